use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "applications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub integration_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub application_id: String,
    pub remote_id: Option<String>,
    pub job_id: Option<String>,
    pub job_name: Option<String>,
    pub candidate_id: Option<String>,
    pub candidate_name: Option<String>,
    pub current_stage_id: Option<String>,
    pub current_stage_name: Option<String>,
    pub current_stage_index: Option<i32>,
    pub stage_unknown_since: Option<DateTimeUtc>,
    pub outcome: Option<String>,
    pub outcome_unknown_since: Option<DateTimeUtc>,
    pub rejection_reason_name: Option<String>,
    pub rejected_at: Option<DateTimeUtc>,
    pub changed_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
    pub remote_created_at: Option<DateTimeUtc>,
    pub origin: String,
    pub first_seen_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    pub entered_current_stage_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
