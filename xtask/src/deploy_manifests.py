"""Renders the Helm chart and reads the compose file for `cargo xtask deploy`.

Usage: deploy_manifests.py ROOT OUT_DIR

- Lints the chart with Helm's own linter (strict) and validates values.yaml against
  values.schema.json with Helm's schema validation;
- renders the chart with Helm's template engine (helm-python-sdk binds Helm's Go SDK: the same
  engine `helm template` runs, not a re-implementation) for each variant below, and writes each
  variant's manifests to OUT_DIR/<variant>.yaml for kubernetes-validate;
- prints one JSON object on stdout: for each variant the kinds rendered, the environment of
  every container (literal values, or {"secret": key} for a secretKeyRef, the ConfigMap's data
  merged in for an envFrom) and the Deployment's terminationGracePeriodSeconds; and for each
  compose service its STAGEWATCH_* environment with compose's `${VAR:-default}` interpolated
  from the defaults (an unset variable without a default becomes a placeholder).
"""

import json
import os
import re
import sys

import helm_python
import yaml

# Each variant: the values given on top of values.yaml.
VARIANTS = {
    "default": {},
    "full": {
        "serviceMonitor": {"enabled": True},
        "ingress": {"enabled": True, "className": "nginx"},
        "podDisruptionBudget": {"enabled": True},
    },
}
KUBERNETES_VERSION = "v1.30.0"


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def render_chart(chart_dir, out_dir):
    report = helm_python.lint(chart_dir, strict=True, kube_version=KUBERNETES_VERSION)
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    if report.get("errors") or problems:
        fail(f"helm lint (strict) failed: {json.dumps(report, indent=2)}")
    chart = helm_python.Chart.load(chart_dir)
    with open(os.path.join(chart_dir, "values.yaml"), encoding="utf-8") as f:
        chart.validate_schema(yaml.safe_load(f))
    variants = {}
    for variant, values in VARIANTS.items():
        chart.validate_schema(chart.merge_values(values))
        rendered = chart.render(
            values, name="stagewatch", namespace="stagewatch", revision=1, is_install=True
        )
        documents = []
        for path in sorted(rendered):
            if not path.endswith((".yaml", ".yml")):
                continue  # NOTES.txt
            for document in yaml.safe_load_all(rendered[path]):
                if document:
                    documents.append(document)
        with open(os.path.join(out_dir, f"{variant}.yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump_all(documents, f, sort_keys=False)
        variants[variant] = describe(documents)
    return variants


def describe(documents):
    config_maps = {
        d["metadata"]["name"]: d.get("data", {}) for d in documents if d["kind"] == "ConfigMap"
    }
    containers = {}
    grace = None
    for d in documents:
        if d["kind"] not in ("Deployment", "Job"):
            continue
        pod = d["spec"]["template"]["spec"]
        if d["kind"] == "Deployment":
            grace = pod.get("terminationGracePeriodSeconds")
        for container in pod["containers"]:
            env = {}
            for source in container.get("envFrom", []):
                name = source["configMapRef"]["name"]
                if name not in config_maps:
                    fail(f"{d['kind']} {d['metadata']['name']} reads a missing ConfigMap {name}")
                env.update(config_maps[name])
            for variable in container.get("env", []):
                if "value" in variable:
                    env[variable["name"]] = str(variable["value"])
                else:
                    env[variable["name"]] = {"secret": variable["valueFrom"]["secretKeyRef"]["key"]}
            containers[f"{d['kind']}/{d['metadata']['name']}/{container['name']}"] = {
                "args": container.get("args", []),
                "env": env,
            }
    return {
        "kinds": [d["kind"] for d in documents],
        "containers": containers,
        "terminationGracePeriodSeconds": grace,
    }


INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def interpolate(value):
    return INTERPOLATION.sub(lambda m: m.group(2) if m.group(2) is not None else f"placeholder-{m.group(1).lower()}", value)


def read_compose(path):
    with open(path, encoding="utf-8") as f:
        compose = yaml.safe_load(f)  # PyYAML resolves the anchors and `<<` merge keys
    services = {}
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        stagewatch = {
            key: interpolate(str(value))
            for key, value in environment.items()
            if key.startswith("STAGEWATCH_")
        }
        if stagewatch:
            services[name] = stagewatch
    return services


def main():
    root, out_dir = sys.argv[1], sys.argv[2]
    chart = render_chart(os.path.join(root, "deploy", "helm", "stagewatch"), out_dir)
    compose = read_compose(os.path.join(root, "deploy", "compose.yaml"))
    json.dump({"chart": chart, "compose": compose}, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
