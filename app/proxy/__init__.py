"""The streaming reverse proxy: `{prefix}/{service}/{path}` to the registry's downstreams."""
