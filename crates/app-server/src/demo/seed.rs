use adapters_kombo::KomboClient;
use adapters_postgres::Store;
use domain::IntegrationId;
use domain::ports::{AtsGateway, JobQuery, NewApplication, NewCandidate};

use domain::actions::record_created;

/// Candidate names for the demo's applications.
const CANDIDATES: [(&str, &str); 12] = [
    ("Jane", "Doe"),
    ("Amir", "Haddad"),
    ("Li", "Wei"),
    ("Sofia", "Rossi"),
    ("Kwame", "Mensah"),
    ("Ingrid", "Larsen"),
    ("Mateo", "García"),
    ("Aiko", "Tanaka"),
    ("Noah", "Schmidt"),
    ("Priya", "Nair"),
    ("Olga", "Ivanova"),
    ("Tom", "Baker"),
];

/// Creates applications in every job of the integration through Kombo, as a product would, and
/// tracks each at once with an `application.created` event. Returns a line for the console.
pub(super) async fn create_applications(
    kombo: &KomboClient,
    store: &Store,
    integration: &IntegrationId,
    per_job: usize,
) -> String {
    let jobs = match kombo
        .fetch_jobs(integration, &JobQuery::default(), None)
        .await
    {
        Ok(page) => page.items,
        Err(error) => return format!("jobs cannot be read ({error})"),
    };
    let mut created = 0;
    let mut failures = Vec::new();
    for (job_number, job) in jobs.iter().enumerate() {
        for slot in 0..per_job {
            let (first, last) = CANDIDATES[(job_number * per_job + slot) % CANDIDATES.len()];
            let application = NewApplication {
                job_id: job.job_id.clone(),
                candidate: NewCandidate {
                    first_name: first.to_owned(),
                    last_name: last.to_owned(),
                    email_address: format!(
                        "{}.{}+{}@example.com",
                        first.to_lowercase(),
                        last.to_lowercase(),
                        integration.as_str().len() + job_number
                    ),
                    phone_number: None,
                    company: None,
                    title: None,
                },
                stage_id: None,
                extra: serde_json::Map::new(),
            };
            match kombo.create_application(integration, &application).await {
                Ok(snapshot) => {
                    match record_created(store, &snapshot, Some(job), chrono::Utc::now()).await {
                        Ok(_) => created += 1,
                        Err(error) => failures.push(error.to_string()),
                    }
                }
                Err(error) => failures.push(error.to_string()),
            }
        }
    }
    match failures.first() {
        None => format!("created {created} applications through Kombo"),
        Some(first) => format!(
            "created {created} applications through Kombo; {} could not be created ({first})",
            failures.len()
        ),
    }
}
