#!/usr/bin/env python3
"""Writes JSON Schemas of the Kombo API objects stagewatch uses, taken from the models of
Kombo's official Python SDK (PyPI package `kombo`, pinned below), into ./schemas/.

Run it with `cargo xtask schemas`, which installs the pinned SDK into a virtual environment under
target/ and then runs this script.
The SDK is generated from Kombo's own OpenAPI document, so these schemas are the closest public
statement of Kombo's wire format. Each file holds one top-level object and its `$defs`.
"""
import json, pathlib, sys
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
    for name, model in MODELS.items():
        schema = without_sentinels(model.model_json_schema(mode="serialization", by_alias=True))
        schema["$comment"] = f"From {model.__name__} in the kombo Python SDK {SDK_VERSION}."
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
