// Starts Swagger UI on /docs. A file of its own (not an inline script), so the page's CSP can
// allow scripts from Studio's origin only.
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    deepLinking: true,
    displayOperationId: true,
    displayRequestDuration: true,
    showExtensions: true,
    showCommonExtensions: true,
    // Docs exist in dev only, to be tried: every operation opens ready to execute.
    tryItOutEnabled: true,
    // Tokens live in this page's memory only, never in localStorage.
    persistAuthorization: false,
    // The default validator is an image from validator.swagger.io: nothing leaves Studio.
    validatorUrl: null,
    // No `?url=` / `?configUrl=`: the page never loads a schema or config named by a link.
    queryConfigEnabled: false,
  });
})();
