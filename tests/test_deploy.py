"""deploy/ stays consistent with the code: metric names, env var names, ports, commands, PromQL.

Fast and offline: parses the Grafana dashboard, the Prometheus rules, the Kubernetes manifest, the
systemd units, the env example and the Dockerfile. promtool (Debian package ``prometheus``) is used
when installed, for a real PromQL parse and the rule unit tests; those tests skip without it.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from prometheus_client import REGISTRY

import crisiswatch.alerting.metrics
import crisiswatch.connectors.metrics
import crisiswatch.control.metrics
import crisiswatch.stream.metrics
from crisiswatch.cli import app as cli_app
from crisiswatch.settings import Settings, WebSettings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "crisiswatch-dashboard.json"
RULES = DEPLOY / "prometheus" / "rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "rules.test.yml"
MANIFEST = DEPLOY / "kubernetes" / "crisiswatch.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
SYSTEMD = DEPLOY / "systemd"
METRICS_MODULES = (
    crisiswatch.stream.metrics,
    crisiswatch.control.metrics,
    crisiswatch.alerting.metrics,
    crisiswatch.connectors.metrics,
)

# Read outside `Settings` (checked below to still be read by the code): the YAML config file
# (crisiswatch/settings.py) and the acting user of the CLI (crisiswatch/cli.py, typer envvar).
ENV_OUTSIDE_SETTINGS = {"CRISISWATCH_CONFIG", "CRISISWATCH_USER"}

METRIC_RE = re.compile(r"\bcrisiswatch_[a-z0-9_]+")
ENV_RE = re.compile(r"\b(?:CRISISWATCH|KAFKA)_[A-Z0-9_]*[A-Z0-9]\b")
STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
CALL_RE = re.compile(r"([a-z_]+)\s*$")
RANGE_FUNCTIONS = {"rate", "irate", "increase"}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


# --- what the code defines -----------------------------------------------------------------------------
@cache
def exposed_series() -> dict[str, tuple[str, str]]:
    """Every sample name the metrics modules expose -> (family name, family type)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    series: dict[str, tuple[str, str]] = {}
    for family in REGISTRY.collect():
        if family.name.startswith("crisiswatch_"):
            for suffix in suffixes.get(family.type, ("",)):
                series[family.name + suffix] = (family.name, family.type)
    return series


def module_families() -> set[str]:
    """Family names of the metric objects defined in the four metrics modules."""
    names = set()
    for module in METRICS_MODULES:
        for value in vars(module).values():
            name = getattr(value, "_name", None)
            if isinstance(name, str) and name.startswith("crisiswatch_") and hasattr(value, "describe"):
                names.add(name)
    return names


def settings_env_names() -> set[str]:
    """Environment variable names `Settings` reads (prefix + field, or the field's validation aliases)."""
    prefix = "CRISISWATCH_"
    names = set()
    for field_name, (_, field) in Settings.fields().items():
        alias = field.validation_alias
        if alias is None:
            names.add(f"{prefix}{field_name}".upper())
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.update(str(choice).upper() for choice in alias.choices)
    return names


# --- what deploy/ references ---------------------------------------------------------------------------
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def all_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for panel in panels:
        out.append(panel)
        out.extend(all_panels(panel.get("panels", [])))
    return out


def dashboard_exprs() -> list[tuple[str, str]]:
    board = dashboard()
    exprs = []
    for panel in all_panels(board["panels"]):
        for target in panel.get("targets", []):
            exprs.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for annotation in board.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            exprs.append((f"annotation {annotation['name']!r}", annotation["expr"]))
    for variable in board.get("templating", {}).get("list", []):
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if variable.get("type") == "query" and query:
            exprs.append((f"variable {variable['name']!r}", query))
    return exprs


def rule_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load(RULES.read_text())
    return [
        (f"rule {rule.get('alert') or rule.get('record')}", str(rule["expr"]))
        for group in rules["groups"]
        for rule in group["rules"]
    ]


ALL_EXPRS = [("dashboard", where, expr) for where, expr in dashboard_exprs()] + [
    ("rules", where, expr) for where, expr in rule_exprs()
]
EXPR_IDS = [f"{source}: {where}" for source, where, _ in ALL_EXPRS]


def without_strings(expr: str) -> str:
    """The expression with string literals (label values) blanked out, same length."""
    return STRING_RE.sub(lambda m: '"' + " " * (len(m.group()) - 2) + '"', expr)


def enclosing_functions(expr: str, position: int) -> list[str]:
    """Names of the function calls whose parentheses enclose ``position``, innermost first."""
    names, depth = [], 0
    for i in range(position - 1, -1, -1):
        if expr[i] == ")":
            depth += 1
        elif expr[i] == "(":
            if depth:
                depth -= 1
            else:
                match = CALL_RE.search(expr[:i])
                names.append(match.group(1) if match else "")
    return names


def metric_refs(expr: str) -> list[tuple[str, int]]:
    plain = without_strings(expr)
    return [(m.group(), m.start()) for m in METRIC_RE.finditer(plain)]


def deploy_text_files() -> list[Path]:
    return [p for p in sorted(DEPLOY.rglob("*")) if p.is_file() and p.suffix != ".json"]


def manifest_docs() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]


def deployment(name: str) -> dict[str, Any]:
    return next(d for d in manifest_docs() if d["kind"] == "Deployment" and d["metadata"]["name"] == name)


def containers() -> list[tuple[str, dict[str, Any]]]:
    return [
        (doc["metadata"]["name"], container)
        for doc in manifest_docs()
        if doc["kind"] == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
    ]


def parse_cli(args: list[str]) -> Any:
    """Parse a crisiswatch command line exactly as the CLI would (raises on unknown commands/options)."""
    # typer vendors its own click (typer._click), so no isinstance checks against the `click` package.
    command: Any = typer.main.get_command(cli_app)
    name, rest, parent = "crisiswatch", list(args), None
    while hasattr(command, "get_command"):  # a group (no options used here): the next word is a command
        parent = command.context_class(command, info_name=name, parent=parent)
        assert rest, f"{args}: a command of {parent.command_path!r} is missing"
        name = rest.pop(0)
        sub = command.get_command(parent, name)
        assert sub is not None, f"{args}: {parent.command_path!r} has no command {name!r}"
        command = sub
    return command.make_context(name, rest, parent=parent)


def check_with_promtool(tmp_path: Path, args: list[str]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus); PromQL checked lightly only")
    result = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# --- metric names --------------------------------------------------------------------------------------
def test_metrics_modules_register_their_families() -> None:
    families = module_families()
    assert len(families) >= 25
    exposed = {family for family, _ in exposed_series().values()}
    assert families <= exposed
    # prometheus_client strips `_total` from counter family names and exposes `<family>_total`.
    assert exposed_series()["crisiswatch_mentions_consumed_total"] == ("crisiswatch_mentions_consumed", "counter")
    assert exposed_series()["crisiswatch_control_messages_rejected_total"][1] == "counter"
    assert "crisiswatch_control_messages_rejected" not in exposed_series()
    assert exposed_series()["crisiswatch_processing_latency_seconds_bucket"][1] == "histogram"


@pytest.mark.parametrize(("source", "where", "expr"), ALL_EXPRS, ids=EXPR_IDS)
def test_every_metric_in_promql_exists(source: str, where: str, expr: str) -> None:
    refs = metric_refs(expr)
    if not refs:  # only Prometheus' own `up` may stand alone (CrisiswatchTargetDown)
        assert re.fullmatch(r"up\{[^}]*\} == 0", expr.strip()), f"{where}: no crisiswatch metric in {expr!r}"
    series = exposed_series()
    for name, _ in refs:
        family = re.sub(r"_(total|bucket|sum|count|created)$", "", name)
        candidates = sorted(s for s, (f, _) in series.items() if f == family)
        assert name in series, f"{where}: no crisiswatch metric exposes {name} (did you mean {candidates}?)"


@pytest.mark.parametrize(("source", "where", "expr"), ALL_EXPRS, ids=EXPR_IDS)
def test_counters_are_rated_and_gauges_are_not(source: str, where: str, expr: str) -> None:
    plain = without_strings(expr)
    for name, position in metric_refs(expr):
        kind = exposed_series()[name][1]
        functions = set(enclosing_functions(plain, position))
        if kind in ("counter", "histogram"):
            assert functions & RANGE_FUNCTIONS, f"{where}: {name} must be inside rate()/increase()"
            assert re.match(r"\s*(\{[^}]*\})?\s*\[", plain[position + len(name) :]), f"{where}: {name} needs [range]"
        else:
            assert not functions & RANGE_FUNCTIONS, f"{where}: gauge {name} inside rate()/increase()"
        if name.endswith("_bucket"):
            assert "histogram_quantile" in functions, f"{where}: {name} outside histogram_quantile()"


@pytest.mark.parametrize(("source", "where", "expr"), ALL_EXPRS, ids=EXPR_IDS)
def test_promql_is_balanced(source: str, where: str, expr: str) -> None:
    plain = without_strings(expr)
    assert plain.count('"') % 2 == 0, f"{where}: unbalanced quotes"
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for char in plain:
        if char in "([{":
            stack.append(char)
        elif char in pairs:
            assert stack and stack.pop() == pairs[char], f"{where}: unbalanced {char!r} in {expr!r}"
    assert not stack, f"{where}: unclosed {stack} in {expr!r}"


def test_dashboard_covers_every_metric() -> None:
    series = exposed_series()
    used = {series[name][0] for _, expr in dashboard_exprs() for name, _ in metric_refs(expr) if name in series}
    missing = module_families() - used
    assert not missing, f"add a panel for {sorted(missing)} to {DASHBOARD.relative_to(ROOT)}"


# --- dashboard and rules structure ---------------------------------------------------------------------
def test_dashboard_is_importable() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    assert board["uid"] and board["title"]
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    assert board["__inputs"][0]["pluginId"] == "prometheus"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    panels = all_panels(board["panels"])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
    titles = [p["title"] for p in panels]
    assert len(titles) == len(set(titles)), "panel titles must be unique"


def test_rules_are_well_formed() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    names = [rule["alert"] for group in groups for rule in group["rules"]]
    assert len(names) == len(set(names))
    for group in groups:
        for rule in group["rules"]:
            assert rule["alert"].startswith("Crisiswatch"), rule
            assert rule["labels"]["severity"] in ("info", "warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]
            if "for" in rule:
                assert re.fullmatch(r"\d+[smhd]", rule["for"]), rule["alert"]


def test_promtool_checks_rules(tmp_path: Path) -> None:
    check_with_promtool(tmp_path, ["check", "rules", str(RULES)])


def test_promtool_rule_unit_tests(tmp_path: Path) -> None:
    check_with_promtool(tmp_path, ["test", "rules", str(RULE_TESTS)])


def test_promtool_parses_dashboard_queries(tmp_path: Path) -> None:
    """Each dashboard query, Grafana variables substituted, as a recording rule: promtool parses it."""
    rules = []
    for i, (_, expr) in enumerate(dashboard_exprs()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
        rules.append({"record": f"crisiswatch:dashboard_query_{i}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    check_with_promtool(tmp_path, ["check", "rules", str(path)])


# --- environment variables -----------------------------------------------------------------------------
def test_allowed_env_vars_outside_settings_are_still_read() -> None:
    sources = "\n".join(p.read_text() for p in (ROOT / "crisiswatch").rglob("*.py"))
    for name in ENV_OUTSIDE_SETTINGS:
        assert f'"{name}"' in sources, f"{name} is no longer read by crisiswatch: drop it from deploy/"
        assert name not in settings_env_names()


def test_every_env_var_in_deploy_is_a_setting() -> None:
    known = settings_env_names() | ENV_OUTSIDE_SETTINGS
    assert {"KAFKA_BOOTSTRAP_SERVERS", "CRISISWATCH_WEB_PORT", "CRISISWATCH_PAGE_PORT"} <= known
    seen = set()
    for path in deploy_text_files():
        for name in ENV_RE.findall(path.read_text()):
            seen.add(name)
            assert name in known, f"{path.relative_to(ROOT)}: {name} is not a Settings field (crisiswatch/settings.py)"
    assert {"KAFKA_BOOTSTRAP_SERVERS", "CRISISWATCH_CONTROL_KEYS", "CRISISWATCH_WEB_HOST"} <= seen


def test_env_example_and_config_map_only_set_settings() -> None:
    known = settings_env_names()
    example = DEPLOY / "crisiswatch.env.example"
    for line in example.read_text().splitlines():
        line = line.strip().lstrip("#").strip()
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            assert line.split("=", 1)[0] in known, line
    config_maps = [doc for doc in manifest_docs() if doc["kind"] == "ConfigMap"]
    assert config_maps
    for doc in config_maps:
        for key in doc["data"]:
            assert key in known, f"ConfigMap {doc['metadata']['name']}: {key}"
    for name, container in containers():
        for env in container.get("env", []):
            assert env["name"] in known, f"{name}/{container['name']}: {env['name']}"


# --- Kubernetes, systemd, Dockerfile ---------------------------------------------------------------------
def test_kubernetes_containers_match_the_cli_and_settings() -> None:
    web_port, page_port = WebSettings.model_fields["web_port"].default, WebSettings.model_fields["page_port"].default
    assert (web_port, page_port) == (6066, 8066)
    config = next(doc for doc in manifest_docs() if doc["kind"] == "ConfigMap")["data"]
    assert int(config.get("CRISISWATCH_WEB_PORT", web_port)) == web_port
    assert int(config.get("CRISISWATCH_PAGE_PORT", page_port)) == page_port
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    commands = {}
    for owner, container in containers():
        assert container["image"] == f"crisiswatch:{version}", container["name"]
        ctx = parse_cli(container["args"])
        commands[ctx.command_path] = (owner, container)
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        assert all(len(name) <= 15 for name in ports), ports
        metrics_port = ctx.params.get("metrics_port")
        if metrics_port:
            assert metrics_port in ports.values(), f"{container['name']}: --metrics-port {metrics_port} not declared"
            assert any(n.startswith("metrics") and p == metrics_port for n, p in ports.items())
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe in container:
                assert container[probe]["httpGet"]["port"] in ports, f"{container['name']} {probe}"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{container['name']}: read-only root needs a writable /tmp"

    _, worker = commands["crisiswatch worker"]
    assert {p["containerPort"] for p in worker["ports"]} == {web_port}
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert '@app.page("/healthz")' in (ROOT / "stream" / "app.py").read_text()
    assert '@app.page("/readyz")' in (ROOT / "stream" / "app.py").read_text()
    assert '@app.page("/metrics")' in (ROOT / "stream" / "app.py").read_text()

    _, web = commands["crisiswatch serve"]
    assert {p["containerPort"] for p in web["ports"]} == {page_port}
    server = (ROOT / "crisiswatch" / "web" / "server.py").read_text()
    for probe in ("livenessProbe", "readinessProbe"):
        path = web[probe]["httpGet"]["path"]
        assert f'add_get("{path}"' in server, f"serve has no {path}"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"

    for needed in ("crisiswatch schedule run", "crisiswatch alerts", "crisiswatch relay"):
        assert needed in commands, needed

    annotations = deployment(commands["crisiswatch worker"][0])["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(web_port)
    assert annotations["prometheus.io/path"] == "/metrics"
    service = next(doc for doc in manifest_docs() if doc["kind"] == "Service")
    control = deployment(commands["crisiswatch serve"][0])
    assert service["spec"]["selector"].items() <= control["spec"]["template"]["metadata"]["labels"].items()


def test_systemd_units_run_real_commands() -> None:
    units = sorted(SYSTEMD.glob("*.service"))
    assert len(units) >= 5
    for unit in units:
        text = unit.read_text()
        exec_start = re.search(r"^ExecStart=(.+)$", text, re.M)
        assert exec_start, unit.name
        binary, *args = shlex.split(exec_start.group(1))
        assert binary.endswith("/crisiswatch"), unit.name
        parse_cli(args)
        assert re.search(r"^User=crisiswatch$", text, re.M), unit.name
        assert "EnvironmentFile=/etc/crisiswatch/crisiswatch.env" in text, unit.name
    assert "Environment=CRISISWATCH_WEB_PORT=%i" in (SYSTEMD / "crisiswatch-worker@.service").read_text()


def package_folders() -> dict[str, str]:
    """setup.py's package -> folder map (read, not run: running it would call setup())."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "FOLDERS")
    return ast.literal_eval(node.value)


def test_dockerfile_is_consistent() -> None:
    text = DOCKERFILE.read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in lines
    assert 'ENTRYPOINT ["crisiswatch"]' in lines
    assert "crisiswatch" in pyproject["project"]["scripts"]
    assert 'CMD ["worker"]' in lines
    parse_cli(["worker"])
    exposed = {int(port) for line in lines if line.startswith("EXPOSE") for port in line.split()[1:]}
    assert exposed == {WebSettings.model_fields["web_port"].default, WebSettings.model_fields["page_port"].default}
    users = [line.split()[1] for line in lines if line.startswith("USER")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    # every package the wheel contains is copied into the build stage, and nothing it needs is ignored
    packages = set(package_folders().values())
    copied = {path for line in lines if line.startswith("COPY") and "--from" not in line for path in line.split()[1:-1]}
    assert packages | {"setup.py", "pyproject.toml"} <= copied, packages - copied
    assert pyproject["project"]["readme"] in text
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line and not line.startswith("#")}
    assert not ignored & (packages | {"setup.py", "pyproject.toml", "README.md"})
    assert ".venv" in ignored
    version = pyproject["project"]["version"]
    assert f"docker build -f deploy/Dockerfile -t crisiswatch:{version} ." in text
    assert f"docker build -f deploy/Dockerfile -t crisiswatch:{version} ." in (DEPLOY / "README.md").read_text()
