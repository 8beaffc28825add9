//! [`AtsGateway`] over Kombo: what each port call sends and how the answer becomes the domain's.

use async_trait::async_trait;
use domain::ports::{
    ApplicationQuery, AtsError, AtsGateway, ImportRequest, ImportedApplication, JobQuery,
    NewApplication, Page, PageCursor, SkippedRecord,
};
use domain::{
    ApplicationId, ApplicationSnapshot, IntegrationId, IntegrationInfo, Pipeline, RejectionReason,
    StageId,
};
use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::chunks::{self, ChunkPosition};
use crate::client::{Call, KomboClient};
use crate::error::malformed;
use crate::generated::{applications, integration, jobs, rejection_reasons, writes};
use crate::{mapping, query};

/// A page as Kombo sends it, its records still raw (unparsed text) so that one unreadable record
/// is reported and skipped rather than failing the page, and each record is parsed once, straight
/// into its wire type.
#[derive(Debug, Deserialize)]
struct RawPage<'a> {
    #[serde(borrow)]
    data: RawPageData<'a>,
}

#[derive(Debug, Deserialize)]
struct RawPageData<'a> {
    next: Option<String>,
    #[serde(default, borrow)]
    results: Vec<&'a RawValue>,
}

/// Only the id of a record, for the report of one that could not be read.
#[derive(Debug, Deserialize)]
struct RecordId {
    id: Option<String>,
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, AtsError> {
    serde_json::from_slice(body).map_err(|error| malformed(error, body))
}

fn log_warnings(endpoint: &'static str, warnings: &[writes::Warning]) {
    for warning in warnings {
        tracing::warn!(endpoint, message = %warning.message, "Kombo returned a warning");
    }
}

/// Decodes and maps each record of a page; those that fail are listed in `skipped`.
fn map_page<W: DeserializeOwned, T, E: std::fmt::Display>(
    body: &[u8],
    map: impl Fn(W) -> Result<T, E>,
) -> Result<Page<T>, AtsError> {
    let page: RawPage<'_> = decode_borrowed(body)?;
    let mut items = Vec::with_capacity(page.data.results.len());
    let mut skipped = Vec::new();
    for record in page.data.results {
        let mapped = serde_json::from_str::<W>(record.get())
            .map_err(|error| error.to_string())
            .and_then(|wire| map(wire).map_err(|error| error.to_string()));
        match mapped {
            Ok(item) => items.push(item),
            Err(reason) => {
                let id = serde_json::from_str::<RecordId>(record.get())
                    .ok()
                    .and_then(|record| record.id);
                tracing::warn!(id = id.as_deref(), %reason, "skipped a record Kombo sent");
                skipped.push(SkippedRecord { id, reason });
            }
        }
    }
    Ok(Page {
        items,
        next: page.data.next.map(PageCursor),
        skipped,
    })
}

fn decode_borrowed<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, AtsError> {
    serde_json::from_slice(body).map_err(|error| malformed(error, body))
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("generated request types serialize to JSON")
}

impl KomboClient {
    /// One request of `GET /ats/jobs`, for at most [`chunks::JOB_IDS_PER_REQUEST`] ids.
    async fn fetch_jobs_once(
        &self,
        integration: &IntegrationId,
        query: &JobQuery,
        cursor: Option<PageCursor>,
    ) -> Result<Page<Pipeline>, AtsError> {
        let call = Call {
            method: Method::GET,
            segments: vec!["ats", "jobs"],
            endpoint: "GET /ats/jobs",
            integration: Some(integration),
            query: query::jobs(query, cursor.as_ref()),
            body: None,
        };
        let body = self.execute(&call).await?;
        map_page::<jobs::Job, _, _>(&body, mapping::pipeline)
    }

    /// Checks that Kombo accepts the API key (`GET /check-api-key`).
    pub async fn check_api_key(&self) -> Result<(), AtsError> {
        let call = Call {
            method: Method::GET,
            segments: vec!["check-api-key"],
            endpoint: "GET /check-api-key",
            integration: None,
            query: Vec::new(),
            body: None,
        };
        let body = self.execute(&call).await?;
        decode::<integration::CheckApiKeyResponse>(&body).map(|_| ())
    }
}

#[async_trait]
impl AtsGateway for KomboClient {
    async fn integration_info(
        &self,
        integration: &IntegrationId,
    ) -> Result<IntegrationInfo, AtsError> {
        let call = Call {
            method: Method::GET,
            segments: vec!["integrations", integration.as_str()],
            endpoint: "GET /integrations/{id}",
            integration: None,
            query: Vec::new(),
            body: None,
        };
        let body = self.execute(&call).await?;
        let response: integration::IntegrationResponse = decode(&body)?;
        mapping::integration_info(response.data).map_err(|error| malformed(error, &body))
    }

    async fn fetch_applications(
        &self,
        integration: &IntegrationId,
        query: &ApplicationQuery,
        cursor: Option<PageCursor>,
    ) -> Result<Page<ApplicationSnapshot>, AtsError> {
        let call = Call {
            method: Method::GET,
            segments: vec!["ats", "applications"],
            endpoint: "GET /ats/applications",
            integration: Some(integration),
            query: query::applications(query, cursor.as_ref()),
            body: None,
        };
        let body = self.execute(&call).await?;
        map_page(&body, |wire: applications::Application| {
            mapping::application(integration, wire)
        })
    }

    async fn fetch_jobs(
        &self,
        integration: &IntegrationId,
        query: &JobQuery,
        cursor: Option<PageCursor>,
    ) -> Result<Page<Pipeline>, AtsError> {
        if query.ids.len() <= chunks::JOB_IDS_PER_REQUEST {
            return self.fetch_jobs_once(integration, query, cursor).await;
        }
        let position = ChunkPosition::from_cursor(cursor.as_ref())?;
        let ids =
            chunks::chunk(&query.ids, position.chunk).ok_or_else(|| AtsError::CursorExpired {
                message: format!("the job listing has no chunk {}", position.chunk),
            })?;
        let one_chunk = JobQuery {
            ids: ids.to_vec(),
            page_size: query.page_size,
        };
        let mut page = self
            .fetch_jobs_once(integration, &one_chunk, position.kombo.clone())
            .await?;
        page.next = position.next(page.next.take(), chunks::count(&query.ids));
        Ok(page)
    }

    async fn fetch_rejection_reasons(
        &self,
        integration: &IntegrationId,
        cursor: Option<PageCursor>,
    ) -> Result<Page<RejectionReason>, AtsError> {
        let call = Call {
            method: Method::GET,
            segments: vec!["ats", "rejection-reasons"],
            endpoint: "GET /ats/rejection-reasons",
            integration: Some(integration),
            query: query::rejection_reasons(cursor.as_ref()),
            body: None,
        };
        let body = self.execute(&call).await?;
        map_page::<rejection_reasons::RejectionReason, _, _>(&body, mapping::rejection_reason)
    }

    async fn create_application(
        &self,
        integration: &IntegrationId,
        application: &NewApplication,
    ) -> Result<ApplicationSnapshot, AtsError> {
        let candidate = &application.candidate;
        let request = writes::CreateApplicationRequest {
            candidate: writes::CreateApplicationCandidate {
                first_name: candidate.first_name.clone(),
                last_name: candidate.last_name.clone(),
                email_address: candidate.email_address.clone(),
                phone_number: candidate.phone_number.clone(),
                company: candidate.company.clone(),
                title: candidate.title.clone(),
            },
            stage_id: application
                .stage_id
                .as_ref()
                .map(|id| id.as_str().to_owned()),
        };
        let mut body = to_json(&request);
        if let Some(object) = body.as_object_mut() {
            for (key, value) in &application.extra {
                // The typed fields win over a pass-through field of the same name.
                object.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        let call = Call {
            method: Method::POST,
            segments: vec!["ats", "jobs", application.job_id.as_str(), "applications"],
            endpoint: "POST /ats/jobs/{job_id}/applications",
            integration: Some(integration),
            query: Vec::new(),
            body: Some(body),
        };
        let body = self.execute(&call).await?;
        let response: writes::CreateApplicationResponse = decode(&body)?;
        log_warnings(call.endpoint, &response.warnings);
        mapping::application(integration, response.data).map_err(|error| malformed(error, &body))
    }

    async fn import_tracked_application(
        &self,
        integration: &IntegrationId,
        request: &ImportRequest,
    ) -> Result<ImportedApplication, AtsError> {
        let mut body = to_json(&writes::ImportTrackedApplicationRequest {
            tracked_at: request.tracked_at,
        });
        if let Some(object) = body.as_object_mut() {
            object.insert(
                request.tool.clone(),
                serde_json::Value::Object(request.identifiers.clone()),
            );
        }
        let call = Call {
            method: Method::POST,
            segments: vec!["ats", "import-tracked-application"],
            endpoint: "POST /ats/import-tracked-application",
            integration: Some(integration),
            query: Vec::new(),
            body: Some(body),
        };
        let body = self.execute(&call).await?;
        let response: writes::ImportTrackedApplicationResponse = decode(&body)?;
        log_warnings(call.endpoint, &response.warnings);
        mapping::imported(response.data).map_err(|error| malformed(error, &body))
    }

    async fn move_application(
        &self,
        integration: &IntegrationId,
        application: &ApplicationId,
        stage: &StageId,
    ) -> Result<(), AtsError> {
        let call = Call {
            method: Method::PUT,
            segments: vec!["ats", "applications", application.as_str(), "stage"],
            endpoint: "PUT /ats/applications/{id}/stage",
            integration: Some(integration),
            query: Vec::new(),
            body: Some(to_json(&writes::MoveStageRequest {
                stage_id: stage.as_str().to_owned(),
            })),
        };
        let body = self.execute(&call).await?;
        let response: writes::MoveStageResponse = decode(&body)?;
        log_warnings(call.endpoint, &response.warnings);
        Ok(())
    }

    async fn reject_application(
        &self,
        integration: &IntegrationId,
        application: &ApplicationId,
        rejection_reason_id: &str,
        note: Option<String>,
    ) -> Result<(), AtsError> {
        let call = Call {
            method: Method::POST,
            segments: vec!["ats", "applications", application.as_str(), "reject"],
            endpoint: "POST /ats/applications/{id}/reject",
            integration: Some(integration),
            query: Vec::new(),
            body: Some(to_json(&writes::RejectRequest {
                rejection_reason_id: rejection_reason_id.to_owned(),
                note,
            })),
        };
        let body = self.execute(&call).await?;
        let response: writes::RejectResponse = decode(&body)?;
        log_warnings(call.endpoint, &response.warnings);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_record_is_skipped_not_fatal() {
        let body = br#"{"status":"success","data":{"next":"c2","results":[
            {"id":"a1","remote_id":null,"changed_at":"2026-11-28T10:00:00Z","unknown":1},
            {"id":"a2","changed_at":"not a date"},
            {"changed_at":"2026-11-28T10:00:00Z"}
        ]}}"#;
        let integration = IntegrationId::parse("greenhouse:1").unwrap();
        let page = map_page(body, |wire: applications::Application| {
            mapping::application(&integration, wire)
        })
        .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].id.as_str(), "a1");
        assert_eq!(page.next, Some(PageCursor("c2".into())));
        let skipped: Vec<_> = page.skipped.iter().map(|s| s.id.as_deref()).collect();
        assert_eq!(skipped, [Some("a2"), None]);
    }

    #[test]
    fn a_body_that_is_not_a_page_is_malformed() {
        let error = map_page(b"<html>502</html>", |wire: jobs::Job| {
            mapping::pipeline(wire)
        })
        .unwrap_err();
        assert!(
            matches!(&error, AtsError::Malformed { excerpt, .. } if excerpt == "<html>502</html>"),
            "{error:?}"
        );
    }
}
