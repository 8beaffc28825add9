"""Drives the Kombo sandbox with Kombo's official Python SDK (PyPI `kombo` 1.4.0).

The SDK validates every response against its pydantic models, so any wire-format drift in the
sandbox surfaces here as a validation error. Reads its target from the environment, as printed by
the `kombo-sandbox` binary: KOMBO_SANDBOX_URL, KOMBO_SANDBOX_CONTROL_URL, KOMBO_API_KEY.
Exits non-zero on the first failure.
"""

import datetime
import json
import os
import sys
import urllib.request

from kombo import Kombo, errors

BASE_URL = os.environ["KOMBO_SANDBOX_URL"]
CONTROL_URL = os.environ["KOMBO_SANDBOX_CONTROL_URL"]
API_KEY = os.environ["KOMBO_API_KEY"]

FULL = "acme-greenhouse"
OUTCOME_UNSUPPORTED = "globex-personio"
APPLICATIONS_UNAVAILABLE = "initech-workday"
STAGES_WITHOUT_INDEX = "umbrella-recruitee"

checks = 0


def check(condition, message):
    global checks
    checks += 1
    if not condition:
        raise AssertionError(message)


def control(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        CONTROL_URL + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        text = response.read()
    return json.loads(text) if text else None


def sdk(integration):
    return Kombo(api_key=API_KEY, integration_id=integration, server_url=BASE_URL)


def all_pages(first_page):
    """Follows the SDK's own pagination (`next()` re-sends the filters with the cursor)."""
    items, page = [], first_page
    while page is not None:
        items.extend(page.result.data.results)
        page = page.next()
    return items


def list_applications(client, between=None, **filters):
    items, page = [], client.ats.get_applications(**filters)
    while page is not None:
        items.extend(page.result.data.results)
        if between:
            between()
        page = page.next()
    return items


def ids(items):
    return sorted(item.id for item in items)


def application_checks():
    client = sdk(FULL)
    expected = [item for item in control("GET", f"/applications/{FULL}") if item["remote_deleted_at"] is None]
    served = list_applications(client, page_size=7)
    check(len(served) == len(set(ids(served))), "no application repeats across pages")
    check(ids(served) == sorted(item["id"] for item in expected), "pages cover the live applications")

    # Activity between pages: nothing present at the start is skipped or repeated.
    live_before = {item.id for item in served}
    moving = list_applications(
        client, between=lambda: control("POST", "/advance", {"steps": 10}), page_size=11, include_deleted=True
    )
    moving_ids = [item.id for item in moving]
    check(len(moving_ids) == len(set(moving_ids)), "no repeats while activity goes on")
    check(live_before <= set(moving_ids), "no skips while activity goes on")

    sample = served[0]
    filters = {
        "ids": ([sample.id], lambda item: item.id == sample.id),
        "remote_ids": ([sample.remote_id], lambda item: item.remote_id == sample.remote_id),
        "outcomes": (["HIRED", "DECLINED"], lambda item: item.outcome in ("HIRED", "DECLINED")),
        "job_ids": ([sample.job_id], lambda item: item.job_id == sample.job_id),
        "job_remote_ids": ([sample.job.remote_id], lambda item: item.job_id == sample.job_id),
        "current_stage_ids": ([sample.current_stage_id], lambda item: item.current_stage_id == sample.current_stage_id),
    }
    everything = list_applications(client, page_size=250)
    for name, (value, keep) in filters.items():
        got = list_applications(client, page_size=5, **{name: value})
        check(ids(got) == ids([item for item in everything if keep(item)]), f"filter {name}")
        check(len(got) > 0 or name == "outcomes", f"filter {name} selects something")

    since = datetime.datetime.now(datetime.timezone.utc)
    control("POST", "/advance", {"steps": 40})
    updated = list_applications(client, updated_after=since, include_deleted=True)
    check(len(updated) > 0, "updated_after sees new activity")
    check(len(updated) < len(everything), "updated_after narrows the list")
    created_after = list_applications(client, remote_created_after=since)
    check(all(item.remote_created_at >= since for item in created_after), "remote_created_after")
    deleted = list_applications(client, include_deleted=True, page_size=250)
    check(len(deleted) >= len(list_applications(client, page_size=250)), "include_deleted adds deleted ones")

    unsupported = sdk(OUTCOME_UNSUPPORTED)
    check(list_applications(unsupported, outcomes=["PENDING"]) == [], "unsupported filter returns nothing")
    ignored = list_applications(unsupported, outcomes=["PENDING"], ignore_unsupported_filters=True)
    check(len(ignored) > 0 and all(item.outcome is None for item in ignored), "outcome is null when unsupported")

    no_index = list_applications(sdk(STAGES_WITHOUT_INDEX))
    check(all(item.current_stage.index is None for item in no_index), "stages without index")

    try:
        sdk(APPLICATIONS_UNAVAILABLE).ats.get_applications()
        check(False, "applications unavailable must fail")
    except errors.KomboAtsError as error:
        check(error.data.error.code == "INTEGRATION.MODEL_NOT_AVAILABLE", "MODEL_NOT_AVAILABLE parses")


def job_checks():
    for integration in (FULL, OUTCOME_UNSUPPORTED, APPLICATIONS_UNAVAILABLE, STAGES_WITHOUT_INDEX):
        jobs = all_pages(sdk(integration).ats.get_jobs(page_size=2))
        check(len(jobs) > 0 and all(job.stages for job in jobs), f"jobs with stages in {integration}")
    client = sdk(FULL)
    jobs = all_pages(client.ats.get_jobs())
    sample = jobs[0]
    check([job.id for job in all_pages(client.ats.get_jobs(ids=[sample.id]))] == [sample.id], "job ids filter")
    check(
        all(job.status == "OPEN" for job in all_pages(client.ats.get_jobs(statuses=["OPEN"]))), "job statuses filter"
    )
    named = all_pages(client.ats.get_jobs(name_contains=sample.name.split(" ")[0]))
    check(sample.id in [job.id for job in named], "name_contains filter")


def action_checks():
    client = sdk(FULL)
    job = next(job for job in all_pages(client.ats.get_jobs(statuses=["OPEN"])))
    created = client.ats.create_application(
        job_id=job.id,
        candidate={"first_name": "Dorothy", "last_name": "Vaughan", "email_address": "dorothy@example.com"},
    )
    application = created.data
    check(application.candidate.first_name == "Dorothy", "created application comes back")
    stage = job.stages[-1]
    client.ats.move_application_to_stage(application_id=application.id, stage_id=stage.id)
    moved = client.ats.get_applications(ids=[application.id]).result.data.results[0]
    check(moved.current_stage_id == stage.id, "move to stage")
    reasons = all_pages(client.ats.get_rejection_reasons())
    check(len(reasons) > 0 and all(reason.id and reason.name for reason in reasons), "rejection reasons")
    filled = next(reason for reason in reasons if reason.name == "Position filled")
    client.ats.reject_application(application_id=application.id, rejection_reason_id=filled.id)
    rejected = client.ats.get_applications(ids=[application.id]).result.data.results[0]
    check(rejected.outcome == "DECLINED" and rejected.rejection_reason_name == "Position filled", "reject")
    blind = sdk(OUTCOME_UNSUPPORTED)
    blind_application = list_applications(blind, page_size=1)[0]
    try:
        blind.ats.reject_application(application_id=blind_application.id, rejection_reason_id=filled.id)
        check(False, "an ATS without outcomes must refuse a rejection")
    except errors.KomboAtsError as error:
        check(error.data.error.code == "INTEGRATION.ACTION_NOT_AVAILABLE", "ACTION_NOT_AVAILABLE parses")
    try:
        client.ats.create_application(
            job_id=job.id,
            candidate={"first_name": "Dorothy", "last_name": "Vaughan", "email_address": "dorothy@example.com"},
        )
        check(False, "a duplicate create must fail")
    except errors.KomboAtsError as error:
        check(error.data.error.code == "ATS.APPLICATION_ALREADY_EXISTS", "duplicate create is refused")

    remote_id = control("GET", f"/untracked/{FULL}")[0]
    imported = client.ats.import_tracked_application(
        tracked_at=datetime.datetime.now(datetime.timezone.utc),
        greenhouse={"id_type": "application_id", "application_id": remote_id},
    )
    served = client.ats.get_applications(ids=[imported.data.id]).result.data.results
    check([item.remote_id for item in served] == [remote_id], "imported application is served")


def general_checks():
    key = Kombo(api_key=API_KEY, server_url=BASE_URL).general.check_api_key()
    check(bool(key.data.environment_id), "check-api-key")
    for integration in (FULL, OUTCOME_UNSUPPORTED, APPLICATIONS_UNAVAILABLE, STAGES_WITHOUT_INDEX):
        details = sdk(integration).general.get_integration_details(integration_id=integration).data
        fields = {field.id: field.coverage_status for field in details.read_models[0].fields}
        expected = "UNSUPPORTED" if integration in (OUTCOME_UNSUPPORTED, APPLICATIONS_UNAVAILABLE) else "SUPPORTED"
        check(fields["outcome"] == expected, f"outcome coverage of {integration}")
    try:
        Kombo(api_key="wrong", integration_id=FULL, server_url=BASE_URL).ats.get_applications()
        check(False, "a wrong key must fail")
    except errors.KomboAtsError as error:
        check(error.data.error.code == "PLATFORM.AUTHENTICATION_INVALID", "auth error parses")


def main():
    general_checks()
    application_checks()
    job_checks()
    action_checks()
    print(f"Kombo SDK conformance: {checks} checks passed")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # noqa: BLE001 - any failure, SDK validation included, fails the run
        print(f"Kombo SDK conformance FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
