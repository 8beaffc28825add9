//! Kombo's wire types → the domain's entities. Every translation lives here, so a change in
//! Kombo's shapes touches one module.

use domain::ports::ImportedApplication;
use domain::{
    ApplicationId, ApplicationSnapshot, CandidateId, Capabilities, IdError, IntegrationId,
    IntegrationInfo, IntegrationStatus, JobId, Outcome, Pipeline, RejectionReason, RemoteId,
    SetupStatus, Stage, StageId, StageStatus, Support,
};

use crate::generated::{applications, integration, jobs, rejection_reasons, writes};

/// Why a record could not be mapped; the record is reported as skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MappingError {
    #[error("{field}: {source}")]
    Id {
        field: &'static str,
        source: IdError,
    },
    #[error("{field}: {value} is out of range")]
    OutOfRange { field: &'static str, value: i64 },
}

/// The Kombo read model whose coverage decides whether applications can be read.
pub(crate) const APPLICATIONS_MODEL: &str = "ats_applications";

fn id<T>(
    field: &'static str,
    value: String,
    parse: fn(String) -> Result<T, IdError>,
) -> Result<T, MappingError> {
    parse(value).map_err(|source| MappingError::Id { field, source })
}

fn optional_id<T>(
    field: &'static str,
    value: Option<String>,
    parse: fn(String) -> Result<T, IdError>,
) -> Result<Option<T>, MappingError> {
    value.map(|value| id(field, value, parse)).transpose()
}

fn stage_index(value: Option<i64>) -> Result<Option<i32>, MappingError> {
    value
        .map(|index| {
            i32::try_from(index).map_err(|_| MappingError::OutOfRange {
                field: "index",
                value: index,
            })
        })
        .transpose()
}

fn outcome(wire: applications::Outcome) -> Outcome {
    match wire {
        applications::Outcome::Pending => Outcome::Pending,
        applications::Outcome::Hired => Outcome::Hired,
        applications::Outcome::Declined => Outcome::Declined,
        applications::Outcome::Other(raw) => Outcome::Unrecognized(raw),
    }
}

/// An unknown stage status says nothing about whether the stage is in use.
fn application_stage_status(wire: &applications::StageStatus) -> Option<StageStatus> {
    match wire {
        applications::StageStatus::Active => Some(StageStatus::Active),
        applications::StageStatus::Inactive => Some(StageStatus::Inactive),
        applications::StageStatus::Other(_) => None,
    }
}

fn job_stage_status(wire: &jobs::StageStatus) -> Option<StageStatus> {
    match wire {
        jobs::StageStatus::Active => Some(StageStatus::Active),
        jobs::StageStatus::Inactive => Some(StageStatus::Inactive),
        jobs::StageStatus::Other(_) => None,
    }
}

/// "First Last", or whichever part is known; `None` when neither is.
fn full_name(first: Option<String>, last: Option<String>) -> Option<String> {
    let parts: Vec<String> = [first, last]
        .into_iter()
        .flatten()
        .map(|part| part.trim().to_owned())
        .filter(|part| !part.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// One application as the sync sees it.
pub(crate) fn application(
    integration_id: &IntegrationId,
    wire: applications::Application,
) -> Result<ApplicationSnapshot, MappingError> {
    let current_stage = wire
        .current_stage
        .map(|stage| {
            Ok::<_, MappingError>(Stage {
                id: id("current_stage.id", stage.id, StageId::parse)?,
                remote_id: optional_id(
                    "current_stage.remote_id",
                    stage.remote_id,
                    RemoteId::parse,
                )?,
                name: stage.name,
                index: stage_index(stage.index)?,
                status: stage.status.as_ref().and_then(application_stage_status),
            })
        })
        .transpose()?;
    Ok(ApplicationSnapshot {
        integration_id: integration_id.clone(),
        id: id("id", wire.id, ApplicationId::parse)?,
        remote_id: optional_id("remote_id", wire.remote_id, RemoteId::parse)?,
        job_id: optional_id("job_id", wire.job_id, JobId::parse)?,
        job_name: wire.job.and_then(|job| job.name),
        candidate_id: optional_id("candidate_id", wire.candidate_id, CandidateId::parse)?,
        candidate_name: wire
            .candidate
            .and_then(|candidate| full_name(candidate.first_name, candidate.last_name)),
        current_stage_id: optional_id("current_stage_id", wire.current_stage_id, StageId::parse)?,
        current_stage,
        outcome: wire.outcome.map(outcome),
        rejection_reason_name: wire.rejection_reason_name,
        rejected_at: wire.rejected_at,
        changed_at: wire.changed_at,
        remote_deleted_at: wire.remote_deleted_at,
        remote_created_at: wire.remote_created_at,
        remote_updated_at: wire.remote_updated_at,
    })
}

/// One job's pipeline: its stages, as the job lists them.
pub(crate) fn pipeline(wire: jobs::Job) -> Result<Pipeline, MappingError> {
    let stages = wire
        .stages
        .into_iter()
        .map(|stage| {
            Ok(Stage {
                id: id("stages.id", stage.id, StageId::parse)?,
                remote_id: optional_id("stages.remote_id", stage.remote_id, RemoteId::parse)?,
                name: stage.name,
                index: stage_index(stage.index)?,
                status: stage.status.as_ref().and_then(job_stage_status),
            })
        })
        .collect::<Result<_, MappingError>>()?;
    Ok(Pipeline {
        job_id: id("id", wire.id, JobId::parse)?,
        job_remote_id: Some(id("remote_id", wire.remote_id, RemoteId::parse)?),
        job_name: wire.name,
        stages,
    })
}

fn integration_status(wire: &integration::IntegrationStatus) -> IntegrationStatus {
    match wire {
        integration::IntegrationStatus::Active => IntegrationStatus::Active,
        integration::IntegrationStatus::Invalid => IntegrationStatus::Invalid,
        integration::IntegrationStatus::Inactive => IntegrationStatus::Inactive,
        integration::IntegrationStatus::Other(_) => IntegrationStatus::Unknown,
    }
}

fn setup_status(wire: &integration::SetupStatus) -> SetupStatus {
    match wire {
        integration::SetupStatus::Incomplete => SetupStatus::Incomplete,
        integration::SetupStatus::FinalSyncPending => SetupStatus::FinalSyncPending,
        integration::SetupStatus::Completed => SetupStatus::Completed,
        integration::SetupStatus::Other(_) => SetupStatus::Unknown,
    }
}

/// Kombo's coverage, with "switched off for this customer" counted as unsupported.
fn support(coverage: &integration::CoverageStatus, is_available: bool) -> Support {
    if !is_available {
        return Support::Unsupported;
    }
    match coverage {
        integration::CoverageStatus::Supported => Support::Supported,
        integration::CoverageStatus::Unsupported => Support::Unsupported,
        integration::CoverageStatus::NotImplemented => Support::NotImplemented,
        integration::CoverageStatus::Unknown | integration::CoverageStatus::Other(_) => {
            Support::Unknown
        }
    }
}

/// What the integration can provide: the applications model and its `outcome` and
/// `current_stage_id` fields. Anything Kombo does not list is unknown, not unsupported.
fn capabilities(read_models: &[integration::ReadModel]) -> Capabilities {
    let Some(model) = read_models
        .iter()
        .find(|model| model.id == APPLICATIONS_MODEL)
    else {
        return Capabilities::unknown();
    };
    let applications = support(&model.coverage_status, model.is_available);
    let field = |name: &str| {
        if !applications.is_available() {
            return applications;
        }
        model
            .fields
            .iter()
            .find(|field| field.id == name)
            .map_or(Support::Unknown, |field| {
                support(&field.coverage_status, field.is_available)
            })
    };
    Capabilities {
        applications,
        outcome: field("outcome"),
        current_stage: field("current_stage_id"),
        observed_gaps: std::collections::BTreeSet::new(),
    }
}

/// The integration's state and what it can provide.
pub(crate) fn integration_info(
    wire: integration::Integration,
) -> Result<IntegrationInfo, MappingError> {
    Ok(IntegrationInfo {
        id: id("id", wire.id, IntegrationId::parse)?,
        tool: Some(wire.tool.id),
        status: integration_status(&wire.status),
        setup_status: Some(setup_status(&wire.setup_status)),
        data_expired_at: wire.data_expired_at,
        capabilities: capabilities(&wire.read_models),
    })
}

/// One of the ATS's rejection reasons.
pub(crate) fn rejection_reason(
    wire: rejection_reasons::RejectionReason,
) -> Result<RejectionReason, MappingError> {
    Ok(RejectionReason {
        id: wire.id,
        remote_id: optional_id("remote_id", Some(wire.remote_id), RemoteId::parse)?,
        name: wire.name,
    })
}

/// Kombo's answer to an import.
pub(crate) fn imported(
    wire: writes::ImportedApplication,
) -> Result<ImportedApplication, MappingError> {
    Ok(ImportedApplication {
        id: id("id", wire.id, ApplicationId::parse)?,
        tracked_at: wire.tracked_at,
    })
}

#[cfg(test)]
mod tests;
