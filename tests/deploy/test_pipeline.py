"""Jenkins runs what .ci/run runs, publishes the results, scans the image, and holds no
executor while production waits for its approval."""

from __future__ import annotations

import re

from tests.deploy.cfn import ROOT

JENKINSFILE = (ROOT / "Jenkinsfile").read_text(encoding="utf-8")
CI_RUN = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
JENKINS_TESTS = (ROOT / "deployment" / "ci" / "test-with-services.sh").read_text(encoding="utf-8")


def stage_body(name: str) -> str:
    after = JENKINSFILE.split(f"stage('{name}')", 1)[1]
    return re.split(r"\n        stage\('", after, maxsplit=1)[0]


def test_jenkins_runs_every_check_of_ci_run() -> None:
    checks = stage_body("Checks")
    for command in ("make ts-check", "make lint", "make lint-deploy"):
        assert command in CI_RUN and command in checks, command
    assert "make test" in CI_RUN and "test-with-services.sh" in checks
    assert 'target="${1:-test}"' in JENKINS_TESTS and 'make "$target"' in JENKINS_TESTS
    assert "install-tools.sh" in CI_RUN and "install-tools.sh" in checks
    for required in ("STUDIO_REQUIRE_SERVICES=1", "STUDIO_REQUIRE_BROWSER=1"):
        assert required in CI_RUN and required in JENKINS_TESTS, required
    assert "STUDIO_REQUIRE_PROMTOOL=1" in CI_RUN and "STUDIO_REQUIRE_PROMTOOL=1" in JENKINS_TESTS


def test_jenkins_publishes_junit_and_scans_the_image() -> None:
    assert "--junitxml=artifacts/junit/" in JENKINS_TESTS
    assert "junit testResults: 'artifacts/junit/*.xml'" in stage_body("Checks")
    build = stage_body("Build, scan and push image")
    assert build.index("docker build") < build.index("scan-image.sh") < build.index("docker push")


def test_the_approval_holds_no_executor() -> None:
    head = JENKINSFILE.split("stages {", 1)[0]
    assert re.search(r"^    agent none$", head, flags=re.M)
    approval = stage_body("Approve production")
    assert "input " in approval and "agent {" not in approval
    assert "branch 'main'" in approval
    for name in ("Checks", "Build, scan and push image", "Deploy to dev", "Deploy to prod"):
        assert "agent { label 'docker' }" in stage_body(name), name
        assert "input " not in stage_body(name), name


def test_mutation_runs_nightly_on_main_and_a_nightly_build_deploys_nothing() -> None:
    assert "cron(env.BRANCH_NAME == 'main' ? " in JENKINSFILE
    mutation = stage_body("Mutation")
    assert "triggeredBy 'TimerTrigger'" in mutation
    assert "test-with-services.sh mutate" in mutation
    for name in ("Build, scan and push image", "Approve production", "Deploy to prod"):
        assert "not { triggeredBy 'TimerTrigger' }" in stage_body(name), name
