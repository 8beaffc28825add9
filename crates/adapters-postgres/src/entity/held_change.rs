use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "held_changes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub integration_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub application_id: String,
    /// `TrackedApplication` as JSON.
    pub application: String,
    /// `Vec<ChangeEvent>` as JSON.
    pub events: String,
    /// The `StageRef` of the held stage entry, as JSON.
    pub stage: Option<String>,
    pub stage_entered_at: Option<DateTimeUtc>,
    pub held_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
