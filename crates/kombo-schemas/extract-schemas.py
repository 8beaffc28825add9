#!/usr/bin/env python3
"""Writes JSON Schemas of the Kombo API objects stagewatch uses, taken from the models of
Kombo's official Python SDK (PyPI package `kombo`, pinned below), into ./schemas/.

Where the SDK's models and Kombo's public OpenAPI document (kombo-openapi.json beside this file)
differ, the wire format follows the OpenAPI document: each response schema gets the properties
the document lists and the SDK lacks (`remote_data`, `integration_fields`, ...), and every
property the document marks required is required here too.

Run it with `cargo xtask schemas`, which installs the pinned SDK into a virtual environment under
target/ and then runs this script.
The SDK is generated from Kombo's own OpenAPI document, so these schemas are the closest public
statement of Kombo's wire format. Each file holds one top-level object and its `$defs`.
"""
import copy, json, pathlib, sys
import kombo.models as m
from kombo.errors.komboatserror import KomboAtsErrorData

SDK_VERSION = "1.4.0"
MODELS = {
    # reading
    "get-ats-applications.response": m.GetAtsApplicationsPositiveResponse,
    "get-ats-jobs.response": m.GetAtsJobsPositiveResponse,
    "get-ats-application-stages.response": m.GetAtsApplicationStagesPositiveResponse,
    "get-ats-rejection-reasons.response": m.GetAtsRejectionReasonsPositiveResponse,
    # writing
    "post-ats-jobs-job-id-applications.request": m.PostAtsJobsJobIDApplicationsRequestBody,
    "post-ats-jobs-job-id-applications.response": m.PostAtsJobsJobIDApplicationsPositiveResponse,
    "put-ats-applications-application-id-stage.request": m.PutAtsApplicationsApplicationIDStageRequestBody,
    "put-ats-applications-application-id-stage.response": m.PutAtsApplicationsApplicationIDStagePositiveResponse,
    "post-ats-applications-application-id-reject.request": m.PostAtsApplicationsApplicationIDRejectRequestBody,
    "post-ats-applications-application-id-reject.response": m.PostAtsApplicationsApplicationIDRejectPositiveResponse,
    "post-ats-import-tracked-application.request": m.PostAtsImportTrackedApplicationRequestBody,
    "post-ats-import-tracked-application.response": m.PostAtsImportTrackedApplicationPositiveResponse,
    # platform
    "error.ats": KomboAtsErrorData,
    "get-check-api-key.response": m.GetCheckAPIKeyPositiveResponse,
    "get-integrations-integration-id.response": m.GetIntegrationsIntegrationIDPositiveResponse,
    "webhook.data-changed": m.DataChangedWebhookPayload,
    "webhook.integration-state-changed": m.IntegrationStateChangedWebhookPayload,
    "webhook.integration-created": m.IntegrationCreatedWebhookPayload,
    "webhook.integration-deleted": m.IntegrationDeletedWebhookPayload,
}

# Which operation's success response each response schema is, in the OpenAPI document.
RESPONSES = {
    "get-ats-applications.response": ("/ats/applications", "get"),
    "get-ats-jobs.response": ("/ats/jobs", "get"),
    "get-ats-application-stages.response": ("/ats/application-stages", "get"),
    "get-ats-rejection-reasons.response": ("/ats/rejection-reasons", "get"),
    "post-ats-jobs-job-id-applications.response": ("/ats/jobs/{job_id}/applications", "post"),
    "put-ats-applications-application-id-stage.response": ("/ats/applications/{application_id}/stage", "put"),
    "post-ats-applications-application-id-reject.response": ("/ats/applications/{application_id}/reject", "post"),
    "post-ats-import-tracked-application.response": ("/ats/import-tracked-application", "post"),
    "get-check-api-key.response": ("/check-api-key", "get"),
    "get-integrations-integration-id.response": ("/integrations/{integration_id}", "get"),
}


def pointer(document, ref):
    node = document
    for part in ref.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def deref(document, node):
    """`node` with its `$ref`s (within `document`) followed."""
    while isinstance(node, dict) and "$ref" in node:
        node = pointer(document, node["$ref"])
    return node


def object_branch(document, node):
    """The object schema of a property that may be nullable (`anyOf` with null, or `allOf` of
    one), or `None` when it is no object."""
    node = deref(document, node)
    if not isinstance(node, dict):
        return None
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            branches = [deref(document, b) for b in node[key]]
            objects = [b for b in branches if isinstance(b, dict) and b.get("type") != "null"]
            return object_branch(document, objects[0]) if len(objects) == 1 else None
    return node if ("properties" in node or node.get("type") in ("object", "array")
                    or (isinstance(node.get("type"), list) and ("object" in node["type"] or "array" in node["type"]))) else None


def inlined(document, node, depth=0):
    """A copy of `node` with every `$ref` of `document` replaced by what it points to."""
    if depth > 20:
        return {}
    if isinstance(node, dict):
        if "$ref" in node:
            return inlined(document, pointer(document, node["$ref"]), depth + 1)
        return {k: inlined(document, v, depth + 1) for k, v in node.items() if k != "externalDocs"}
    if isinstance(node, list):
        return [inlined(document, v, depth + 1) for v in node]
    return node


def follow_openapi(sdk_schema, sdk_node, openapi, oa_node):
    """Adds to the SDK's `sdk_node` what the OpenAPI document's `oa_node` says of the same
    object: the properties it lacks and every required one; then does the same for nested
    objects and array items."""
    ours = object_branch(sdk_schema, sdk_node)
    theirs = object_branch(openapi, oa_node)
    if ours is None or theirs is None:
        return
    if "items" in ours and "items" in theirs:
        follow_openapi(sdk_schema, ours["items"], openapi, theirs["items"])
        return
    if "properties" not in ours or "properties" not in theirs:
        return
    for name, schema in theirs["properties"].items():
        if name not in ours["properties"]:
            ours["properties"][name] = inlined(openapi, schema)
        else:
            follow_openapi(sdk_schema, ours["properties"][name], openapi, schema)
    required = list(ours.get("required", []))
    required += [n for n in theirs.get("required", []) if n in ours["properties"] and n not in required]
    if required:
        ours["required"] = required


def success_schema(openapi, path, method):
    responses = openapi["paths"][path][method]["responses"]
    return responses["200"]["content"]["application/json"]["schema"]


SENTINEL = "~?~unset~?~sentinel~?~"  # the SDK's marker for "field may be absent"; not a wire value

def without_sentinels(node):
    if isinstance(node, dict):
        return {k: without_sentinels(v) for k, v in node.items() if not (k == "default" and v == SENTINEL)}
    if isinstance(node, list):
        return [without_sentinels(v) for v in node]
    return node

def main() -> int:
    out = pathlib.Path(__file__).with_name("schemas")
    out.mkdir(exist_ok=True)
    openapi = json.loads(pathlib.Path(__file__).with_name("kombo-openapi.json").read_text())
    for name, model in MODELS.items():
        schema = without_sentinels(model.model_json_schema(mode="serialization", by_alias=True))
        schema["$comment"] = f"From {model.__name__} in the kombo Python SDK {SDK_VERSION}."
        if name in RESPONSES:
            follow_openapi(schema, schema, openapi, success_schema(openapi, *RESPONSES[name]))
            schema["$comment"] += " Properties and required ones as in Kombo's OpenAPI document."
        (out / f"{name}.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    # query parameters of GET /ats/applications and GET /ats/jobs
    params = {}
    for name, req in {"get-ats-applications": m.GetAtsApplicationsRequest,
                      "get-ats-jobs": m.GetAtsJobsRequest}.items():
        params[name] = {f: {"type": str(info.annotation).replace("typing.", ""),
                            "default": None if info.default is None else repr(info.default)}
                        for f, info in req.model_fields.items()}
    (out / "query-parameters.json").write_text(json.dumps(params, indent=2) + "\n")
    print(f"wrote {len(MODELS) + 1} files to {out}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
