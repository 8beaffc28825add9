use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub sequence: i64,
    #[sea_orm(unique)]
    pub event_id: String,
    pub event_type: String,
    pub integration_id: Option<String>,
    pub application_id: Option<String>,
    pub occurred_at: DateTimeUtc,
    pub detected_at: DateTimeUtc,
    /// The whole `ChangeEvent` as JSON.
    pub payload: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
