use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stage_visits")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub integration_id: String,
    pub application_id: String,
    pub stage_id: String,
    pub stage_name: Option<String>,
    pub stage_index: Option<i32>,
    /// `None` when the application was in the stage before tracking began.
    pub entered_at: Option<DateTimeUtc>,
    pub left_at: Option<DateTimeUtc>,
    /// Set once the next visit began (`left_at` may still be unknown).
    pub closed: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
