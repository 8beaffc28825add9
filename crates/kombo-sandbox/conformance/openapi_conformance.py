"""Checks the Kombo sandbox's answers against Kombo's public OpenAPI document.

The Python SDK's models (sdk_conformance.py) mark fewer fields required than the OpenAPI
document does; where they differ the wire format follows the document. This reads every kind of
answer the sandbox gives (reads, writes, an error), with and without raw `remote_data`, and
validates each against the document's schema for that operation and status. Reads its target
from the environment, as printed by the `kombo-sandbox` binary: KOMBO_SANDBOX_URL, KOMBO_API_KEY.
Exits non-zero listing every mismatch.
"""

import json
import os
import pathlib
import sys
import urllib.error
import urllib.request

import jsonschema

DOCUMENT = pathlib.Path(__file__).resolve().parents[2] / "kombo-schemas" / "kombo-openapi.json"
BASE_URL = os.environ["KOMBO_SANDBOX_URL"]
API_KEY = os.environ["KOMBO_API_KEY"]
FULL = "acme-greenhouse"

document = json.loads(DOCUMENT.read_text())
problems = []
checked = 0


def call(method, path, integration=None, body=None):
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    if integration:
        headers["X-Integration-Id"] = integration
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE_URL + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def validate(label, template, method, status, body):
    global checked
    responses = document["paths"][template][method.lower()]["responses"]
    answer = responses.get(str(status)) or responses.get("default")
    while isinstance(answer, dict) and "$ref" in answer:
        answer = document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    if answer is None:
        problems.append(f"{label}: status {status} is not documented")
        return
    schema = dict(answer["content"]["application/json"]["schema"])
    schema["components"] = document["components"]
    validator = jsonschema.Draft202012Validator(schema)
    for error in list(validator.iter_errors(body))[:5]:
        path = "/".join(str(part) for part in error.absolute_path)
        problems.append(f"{label}: {error.message[:200]} at /{path}")
    checked += 1


def main():
    status, body = call("GET", "/check-api-key")
    validate("check-api-key", "/check-api-key", "GET", status, body)
    status, body = call("GET", f"/integrations/{FULL}")
    validate("integration", "/integrations/{integration_id}", "GET", status, body)
    status, body = call("GET", "/ats/applications?page_size=50&include_deleted=true", FULL)
    validate("applications", "/ats/applications", "GET", status, body)
    status, jobs = call("GET", "/ats/jobs?statuses=OPEN", FULL)
    validate("jobs", "/ats/jobs", "GET", status, jobs)
    status, reasons = call("GET", "/ats/rejection-reasons", FULL)
    validate("rejection-reasons", "/ats/rejection-reasons", "GET", status, reasons)

    job = jobs["data"]["results"][0]
    candidate = {"first_name": "Katherine", "last_name": "Johnson", "email_address": "katherine@example.com"}
    status, created = call("POST", f"/ats/jobs/{job['id']}/applications", FULL, {"candidate": candidate})
    validate("create", "/ats/jobs/{job_id}/applications", "POST", status, created)
    application = created["data"]["id"]
    stage = job["stages"][-1]["id"]
    status, body = call("PUT", f"/ats/applications/{application}/stage", FULL, {"stage_id": stage})
    validate("move", "/ats/applications/{application_id}/stage", "PUT", status, body)
    reason = reasons["data"]["results"][0]["id"]
    status, body = call("POST", f"/ats/applications/{application}/reject", FULL, {"rejection_reason_id": reason})
    validate("reject", "/ats/applications/{application_id}/reject", "POST", status, body)

    status, body = call("GET", "/ats/applications", "no-such-integration")
    validate("error", "/ats/applications", "GET", status, body)

    if problems:
        print("the sandbox differs from Kombo's OpenAPI document:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"Kombo OpenAPI conformance: {checked} answers match the document")
    return 0


if __name__ == "__main__":
    sys.exit(main())
