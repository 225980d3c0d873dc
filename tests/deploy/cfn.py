"""Render what CloudFormation would give Studio's container: its Environment and its Secrets.

The template is read with PyYAML plus constructors for the short-form intrinsic functions
(`!Ref`, `!Sub`, `!If`, ...), which become their long form (`{"Fn::Sub": ...}`); `resolve`
then evaluates the subset a task definition may use against the stack's parameters, pseudo
parameters and conditions. Anything it cannot evaluate is an error, never a silent pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deployment" / "cloudformation" / "studio.yml"
PARAMS_DIR = ROOT / "deployment" / "cloudformation"
REGION = "eu-west-1"
ACCOUNT = "000000000000"
CONTAINER = "studio"

_FUNCTIONS = (
    "Ref",
    "Condition",
    "Fn::Sub",
    "Fn::GetAtt",
    "Fn::If",
    "Fn::Equals",
    "Fn::Not",
    "Fn::And",
    "Fn::Or",
    "Fn::Join",
    "Fn::Select",
    "Fn::Split",
    "Fn::FindInMap",
    "Fn::Base64",
    "Fn::ImportValue",
    "Fn::GetAZs",
    "Fn::Cidr",
)
_SUB_VAR = re.compile(r"\$\{([^}!]+)\}")


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation's short-form tags as their long form."""


def _tag(name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return construct


for _name in _FUNCTIONS:
    _short = _name.removeprefix("Fn::")
    _Loader.add_constructor(f"!{_short}", _tag(_name))


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    assert isinstance(data, dict), f"{path}: not a mapping"
    return data


def stages(template: dict[str, Any]) -> list[str]:
    """The stages the template accepts (its `Stage` parameter's AllowedValues)."""
    return list(template["Parameters"]["Stage"]["AllowedValues"])


def params_file(stage: str) -> Path:
    return PARAMS_DIR / f"params-{stage}.json"


class Stack:
    """One stack of the template: parameters as `deployment/ci/deploy.sh` passes them."""

    def __init__(
        self,
        template: dict[str, Any],
        stage: str,
        image: str,
        overrides: dict[str, str] | None = None,
    ) -> None:
        self.template = template
        self.stage = stage
        given = json.loads(params_file(stage).read_text(encoding="utf-8"))
        given |= {"Stage": stage, "Image": image}  # deploy.sh adds these two
        given |= overrides or {}  # an operator's `--parameter-overrides`
        self.parameters = self._parameters(given)
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": f"studio-{stage}",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
        }
        self._conditions: dict[str, bool] = {}

    def _parameters(self, given: dict[str, Any]) -> dict[str, Any]:
        declared: dict[str, Any] = self.template.get("Parameters", {})
        unknown = sorted(set(given) - set(declared))
        assert not unknown, f"{params_file(self.stage).name}: not template parameters: {unknown}"
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in given:
                value = str(given[name])
            elif "Default" in spec:
                value = str(spec["Default"])
            else:
                raise AssertionError(f"stage {self.stage}: parameter {name} has no value")
            allowed = spec.get("AllowedValues")
            if allowed is not None:
                assert value in [str(a) for a in allowed], f"{name}={value!r} not in {allowed}"
            pattern = spec.get("AllowedPattern")
            if pattern is not None:
                assert re.fullmatch(pattern, value), f"{name}={value!r} !~ {pattern}"
            if str(spec.get("Type", "")).startswith("List<") or spec.get("Type") == (
                "CommaDelimitedList"
            ):
                values[name] = value.split(",")
            else:
                values[name] = value
        return values

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            value = self.resolve(self.template["Conditions"][name])
            assert isinstance(value, bool), f"condition {name} is not a boolean"
            self._conditions[name] = value
        return self._conditions[name]

    def resolve(self, node: Any) -> Any:
        """`node` with every intrinsic function evaluated."""
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key in _FUNCTIONS:
                return self._function(key, arg)
        out = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.template.get("Resources", {}):
            return f"<{name}>"  # a physical id: only its presence matters here
        raise AssertionError(f"!Ref {name}: no such parameter or resource")

    def _function(self, key: str, arg: Any) -> Any:
        if key == "Ref":
            return self._ref(arg)
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::If":
            name, then, other = arg
            return self.resolve(then if self.condition(name) else other)
        if key == "Fn::Equals":
            left, right = (self.resolve(a) for a in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::And":
            return all(self.resolve(a) for a in arg)
        if key == "Fn::Or":
            return any(self.resolve(a) for a in arg)
        if key == "Fn::Join":
            sep, items = arg
            return sep.join(str(i) for i in self.resolve(items))
        if key == "Fn::Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if key == "Fn::Split":
            sep, text = arg
            return str(self.resolve(text)).split(sep)
        if key == "Fn::FindInMap":
            table, first, second = (self.resolve(a) for a in arg)
            return self.template["Mappings"][table][first][second]
        if key == "Fn::GetAtt":
            resource, attribute = arg
            assert resource in self.template["Resources"], f"!GetAtt {resource}: no such resource"
            return f"<{resource}.{attribute}>"
        if key == "Fn::Sub":
            return self._sub(arg)
        raise AssertionError(f"{key} is not evaluated by this renderer")

    def _sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name:
                resource, attribute = name.split(".", 1)
                return str(self._function("Fn::GetAtt", [resource, attribute]))
            value = self._ref(name)
            assert not isinstance(value, list), f"${{{name}}} is a list"
            return str(value)

        return _SUB_VAR.sub(replace, text).replace("${!", "${")


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE = _NoValue()


@dataclass(frozen=True)
class Task:
    """What ECS gives the container: plain variables and SSM-backed ones (name -> parameter)."""

    stage: str
    environment: dict[str, str]
    secrets: dict[str, str]
    task_role_ssm: list[str]


def ssm_parameter_name(arn: str) -> str:
    """`/a/b` from `arn:aws:ssm:region:account:parameter/a/b` (or a bare name)."""
    if arn.startswith("arn:"):
        resource = arn.split(":", 5)[5]
        assert resource.startswith("parameter/"), f"{arn}: not an SSM parameter ARN"
        return resource[len("parameter") :]
    return arn


def render_task(
    stage: str, image: str = "studio:test", overrides: dict[str, str] | None = None
) -> Task:
    """The container definition of `stage`'s stack, resolved."""
    template = load_template()
    stack = Stack(template, stage, image, overrides)
    resources = template["Resources"]
    definition = stack.resolve(resources["TaskDefinition"]["Properties"])
    (container,) = [c for c in definition["ContainerDefinitions"] if c["Name"] == CONTAINER]
    environment: dict[str, str] = {}
    for item in container.get("Environment", []):
        assert item["Name"] not in environment, f"{item['Name']} is set twice"
        environment[item["Name"]] = str(item["Value"])
    secrets = {s["Name"]: ssm_parameter_name(s["ValueFrom"]) for s in container.get("Secrets", [])}
    overlap = set(environment) & set(secrets)
    assert not overlap, f"both Environment and Secrets set {overlap}"
    task_role = stack.resolve(resources["TaskRole"]["Properties"])
    return Task(stage, environment, secrets, _ssm_resources(task_role))


def _ssm_resources(role: dict[str, Any]) -> list[str]:
    """The SSM parameter ARNs (patterns) a role may read."""
    out: list[str] = []
    for policy in role.get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            if statement["Effect"] == "Allow" and any(a.startswith("ssm:Get") for a in actions):
                resource = statement["Resource"]
                out.extend([resource] if isinstance(resource, str) else resource)
    return out
