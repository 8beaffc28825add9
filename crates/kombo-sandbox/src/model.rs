//! The simulated ATS data, held in memory, and how it is seeded.
//!
//! Applications live in one `Vec` per integration in insertion order and are never removed
//! (deletion sets `remote_deleted_at`), so a cursor can be a position in that `Vec`: a page
//! costs O(page size), and pages never skip or repeat an item while activity goes on.

use std::collections::HashMap;

use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{AtsProfile, IntegrationConfig};
use crate::truth::TruthEntry;

/// Kombo's id alphabet (base58, no look-alike characters).
const ID_ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

const PIPELINES: &[&[&str]] = &[
    &[
        "Application Review",
        "Phone Screen",
        "Technical Interview",
        "Onsite",
        "Offer",
        "Hired",
    ],
    &["New", "Screening", "Interview", "Reference Check", "Offer"],
    &[
        "Applied",
        "Recruiter Call",
        "Hiring Manager Interview",
        "Case Study",
        "Final Interview",
        "Offer",
        "Background Check",
    ],
    &["Inbox", "Assessment", "Interview", "Offer"],
];
const JOB_TITLES: &[&str] = &[
    "Backend Engineer",
    "Product Designer",
    "Data Analyst",
    "Account Executive",
    "Site Reliability Engineer",
    "Customer Success Manager",
    "Marketing Lead",
    "Recruiter",
    "Finance Manager",
    "Frontend Engineer",
];
const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "Design",
    "Sales",
    "Operations",
    "Finance",
    "Marketing",
];
const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Grace",
    "Linus",
    "Margaret",
    "Alan",
    "Katherine",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Hedy",
    "John",
    "Shafi",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Turing",
    "Johnson",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "McCarthy",
    "Goldwasser",
];
pub(crate) const REJECTION_REASONS: &[&str] = &[
    "Not enough experience",
    "Position filled",
    "Salary expectations too high",
    "Failed technical assessment",
    "Culture fit",
];
pub(crate) const WITHDRAWAL_REASON: &str = "Candidate withdrew";

/// Whether an application is still open, hired or declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Pending,
    Hired,
    Declined,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "PENDING",
            Outcome::Hired => "HIRED",
            Outcome::Declined => "DECLINED",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Stage {
    pub(crate) id: String,
    pub(crate) remote_id: String,
    pub(crate) name: String,
    pub(crate) active: bool,
    pub(crate) index: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) remote_id: String,
    pub(crate) name: String,
    pub(crate) code: String,
    pub(crate) department: String,
    pub(crate) open: bool,
    pub(crate) employment_type: &'static str,
    pub(crate) visibility: &'static str,
    pub(crate) stages: Vec<Stage>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) changed_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

impl Job {
    pub(crate) fn stage(&self, stage_id: &str) -> Option<&Stage> {
        self.stages.iter().find(|stage| stage.id == stage_id)
    }

    /// Active stages in pipeline order.
    pub(crate) fn active_stages(&self) -> Vec<&Stage> {
        let mut stages: Vec<&Stage> = self.stages.iter().filter(|stage| stage.active).collect();
        stages.sort_by_key(|stage| stage.index);
        stages
    }

    pub(crate) fn first_stage(&self) -> &Stage {
        self.active_stages()
            .first()
            .copied()
            .unwrap_or(&self.stages[0])
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) id: String,
    pub(crate) remote_id: String,
    pub(crate) first_name: String,
    pub(crate) last_name: String,
    pub(crate) email: String,
    pub(crate) phone: Option<String>,
    pub(crate) source: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Interview {
    pub(crate) id: String,
    pub(crate) remote_id: String,
    pub(crate) title: String,
    pub(crate) starting_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(crate) struct Application {
    pub(crate) id: String,
    pub(crate) remote_id: String,
    pub(crate) job: usize,
    pub(crate) stage_id: String,
    pub(crate) outcome: Outcome,
    pub(crate) rejection_reason: Option<String>,
    pub(crate) rejected_at: Option<DateTime<Utc>>,
    pub(crate) candidate: Candidate,
    pub(crate) interviews: Vec<Interview>,
    pub(crate) created_at: DateTime<Utc>,
    /// Moves only when the application's own fields change (Kombo's `changed_at`).
    pub(crate) changed_at: DateTime<Utc>,
    /// Moves on any change an `updated_after` read must see: own fields, candidate, current
    /// stage record, interviews.
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) deleted_at: Option<DateTime<Utc>>,
    /// Created through the API or imported: Kombo syncs and serves it.
    pub(crate) tracked: bool,
}

/// Applications per block of [`Integration::updated_bounds`].
pub(crate) const UPDATE_BLOCK: usize = 256;

#[derive(Debug)]
pub(crate) struct Integration {
    pub(crate) id: String,
    pub(crate) tool: String,
    pub(crate) profile: AtsProfile,
    pub(crate) ready: bool,
    pub(crate) sync_all: bool,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) data_expired_at: Option<DateTime<Utc>>,
    pub(crate) jobs: Vec<Job>,
    pub(crate) jobs_by_id: HashMap<String, usize>,
    pub(crate) applications: Vec<Application>,
    pub(crate) applications_by_id: HashMap<String, usize>,
    pub(crate) applications_by_remote_id: HashMap<String, usize>,
    /// For each block of [`UPDATE_BLOCK`] applications (by position), a time no application of
    /// the block was updated after: `updated_after` reads skip the blocks before it, as Kombo's
    /// own index would, instead of reading every application. Raised by
    /// [`Integration::update_application`] and [`Integration::push_application`], the only
    /// writers of `updated_at`.
    pub(crate) updated_bounds: Vec<DateTime<Utc>>,
    pub(crate) truth: Vec<TruthEntry>,
    /// Serve each record's raw ATS object as `remote_data` (else `null`).
    pub(crate) remote_data: bool,
}

impl Integration {
    pub(crate) fn serves(&self, application: &Application) -> bool {
        application.tracked || self.sync_all
    }

    /// The application at `position`, for a change that Kombo stamps `updated_at` with `at`.
    pub(crate) fn update_application(
        &mut self,
        position: usize,
        at: DateTime<Utc>,
    ) -> &mut Application {
        self.raise_bound(position, at);
        let application = &mut self.applications[position];
        application.updated_at = at;
        application
    }

    /// The first position from `position` on that may hold an application updated at or after
    /// `after` (`applications.len()` when none can).
    pub(crate) fn next_updated_from(&self, mut position: usize, after: DateTime<Utc>) -> usize {
        while let Some(bound) = self.updated_bounds.get(position / UPDATE_BLOCK) {
            if *bound >= after {
                return position;
            }
            position = (position / UPDATE_BLOCK + 1) * UPDATE_BLOCK;
        }
        position.min(self.applications.len())
    }

    /// Whether every block's bound is at least its applications' `updated_at`.
    pub(crate) fn updated_bounds_hold(&self) -> bool {
        self.applications
            .chunks(UPDATE_BLOCK)
            .zip(&self.updated_bounds)
            .all(|(block, bound)| block.iter().all(|a| a.updated_at <= *bound))
            && self.updated_bounds.len() == self.applications.len().div_ceil(UPDATE_BLOCK)
    }

    fn raise_bound(&mut self, position: usize, at: DateTime<Utc>) {
        let block = position / UPDATE_BLOCK;
        if block >= self.updated_bounds.len() {
            self.updated_bounds.resize(block + 1, at);
        }
        let bound = &mut self.updated_bounds[block];
        *bound = (*bound).max(at);
    }

    pub(crate) fn push_application(&mut self, application: Application) -> usize {
        let position = self.applications.len();
        self.raise_bound(position, application.updated_at);
        self.applications_by_id
            .insert(application.id.clone(), position);
        self.applications_by_remote_id
            .insert(application.remote_id.clone(), position);
        self.applications.push(application);
        position
    }

    pub(crate) fn job_by_reference(&self, reference: &str) -> Option<usize> {
        if let Some(remote_id) = reference.strip_prefix("remote:") {
            return self.jobs.iter().position(|job| job.remote_id == remote_id);
        }
        self.jobs_by_id.get(reference).copied()
    }
}

/// Strictly increasing millisecond timestamps near wall-clock time. Never behind the wall clock,
/// so a reader that passes its own fetch start time as `updated_after` misses nothing.
#[derive(Debug)]
pub(crate) struct Clock {
    last: DateTime<Utc>,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            last: truncate(Utc::now()) - TimeDelta::milliseconds(1),
        }
    }

    pub(crate) fn now(&mut self) -> DateTime<Utc> {
        let wall = truncate(Utc::now());
        self.last = if wall > self.last {
            wall
        } else {
            self.last + TimeDelta::milliseconds(1)
        };
        self.last
    }

    pub(crate) fn peek(&self) -> DateTime<Utc> {
        self.last.max(truncate(Utc::now()))
    }
}

fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(at)
}

/// Ids, names and choices drawn from one seeded generator.
#[derive(Debug)]
pub(crate) struct Random {
    pub(crate) rng: StdRng,
    next_remote_id: u64,
}

impl Random {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            next_remote_id: 4_000_000,
        }
    }

    pub(crate) fn kombo_id(&mut self) -> String {
        (0..24)
            .map(|_| char::from(ID_ALPHABET[self.rng.random_range(0..ID_ALPHABET.len())]))
            .collect()
    }

    pub(crate) fn remote_id(&mut self) -> String {
        self.next_remote_id += 1 + self.rng.random_range(0..7);
        self.next_remote_id.to_string()
    }

    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.random_range(0..items.len())]
    }

    pub(crate) fn chance(&mut self, probability: f64) -> bool {
        self.rng.random_bool(probability.clamp(0.0, 1.0))
    }

    pub(crate) fn candidate(&mut self) -> Candidate {
        let first_name = self.pick(FIRST_NAMES).to_owned();
        let last_name = self.pick(LAST_NAMES).to_owned();
        let number: u32 = self.rng.random_range(1..1_000_000);
        Candidate {
            id: self.kombo_id(),
            remote_id: self.remote_id(),
            email: format!(
                "{}.{}.{number}@example.com",
                first_name.to_lowercase(),
                last_name.to_lowercase()
            ),
            first_name,
            last_name,
            phone: self
                .chance(0.6)
                .then(|| format!("+49 30 {:07}", self.rng.random_range(0..10_000_000))),
            source: Some(
                self.pick(&["LinkedIn", "Referral", "Careers page", "Indeed"])
                    .to_owned(),
            ),
        }
    }

    fn job(&mut self, number: usize, created_at: DateTime<Utc>) -> Job {
        let pipeline = PIPELINES[self.rng.random_range(0..PIPELINES.len())];
        let stages = pipeline
            .iter()
            .enumerate()
            .map(|(index, name)| Stage {
                id: self.kombo_id(),
                remote_id: self.remote_id(),
                name: (*name).to_owned(),
                // Some ATS keep retired stages around; never the first one, so new applications
                // always have somewhere to start.
                active: index == 0 || !self.chance(0.12),
                index,
            })
            .collect();
        Job {
            id: self.kombo_id(),
            remote_id: self.remote_id(),
            name: format!("{} #{}", self.pick(JOB_TITLES), number + 1),
            code: format!("JOB-{:04}", number + 1),
            department: self.pick(DEPARTMENTS).to_owned(),
            open: number % 7 != 6,
            employment_type: self.pick(&["FULL_TIME", "PART_TIME", "CONTRACT", "INTERNSHIP"]),
            visibility: self.pick(&["PUBLIC", "INTERNAL", "UNLISTED"]),
            stages,
            created_at,
            changed_at: created_at,
            updated_at: created_at,
        }
    }

    /// A historic application somewhere in its job's pipeline.
    fn historic_application(
        &mut self,
        job_position: usize,
        job: &Job,
        now: DateTime<Utc>,
        tracked: bool,
    ) -> Application {
        let created_at = now - Duration::minutes(self.rng.random_range(60..60 * 24 * 45));
        let changed_at = created_at + (now - created_at) / self.rng.random_range(2..6);
        let stages = job.active_stages();
        let stage = stages[self.rng.random_range(0..stages.len())];
        let roll: f64 = self.rng.random();
        let (outcome, rejection_reason, rejected_at) = if roll < 0.15 {
            (
                Outcome::Declined,
                Some(self.pick(REJECTION_REASONS).to_owned()),
                Some(changed_at),
            )
        } else if roll < 0.2 {
            (Outcome::Hired, None, None)
        } else {
            (Outcome::Pending, None, None)
        };
        Application {
            id: self.kombo_id(),
            remote_id: self.remote_id(),
            job: job_position,
            stage_id: stage.id.clone(),
            outcome,
            rejection_reason,
            rejected_at,
            candidate: self.candidate(),
            interviews: Vec::new(),
            created_at,
            changed_at,
            updated_at: changed_at,
            deleted_at: None,
            tracked,
        }
    }

    pub(crate) fn integration(
        &mut self,
        config: &IntegrationConfig,
        now: DateTime<Utc>,
    ) -> Integration {
        let created_at = now - Duration::days(90);
        let mut integration = Integration {
            id: config.id.clone(),
            tool: config.tool.clone(),
            profile: config.profile,
            ready: config.ready,
            sync_all: config.sync_all,
            created_at,
            data_expired_at: None,
            jobs: Vec::new(),
            jobs_by_id: HashMap::new(),
            applications: Vec::new(),
            applications_by_id: HashMap::new(),
            applications_by_remote_id: HashMap::new(),
            updated_bounds: Vec::new(),
            truth: Vec::new(),
            remote_data: false,
        };
        for number in 0..config.jobs {
            let job_created = created_at + Duration::hours(self.rng.random_range(0..24 * 30));
            let job = self.job(number, job_created);
            integration.jobs_by_id.insert(job.id.clone(), number);
            integration.jobs.push(job);
        }
        // Interleave jobs so the serving order follows neither job nor time.
        for round in 0..=config.applications_per_job {
            for job_position in 0..config.jobs {
                let tracked = round < config.applications_per_job;
                let application = self.historic_application(
                    job_position,
                    &integration.jobs[job_position],
                    now,
                    tracked,
                );
                integration.push_application(application);
            }
        }
        integration
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};

    use super::*;
    use crate::config::{AtsProfile, IntegrationConfig};

    #[test]
    fn updated_after_reads_skip_only_blocks_updated_before() {
        let now = Utc::now();
        let config =
            IntegrationConfig::new("acme", "greenhouse", AtsProfile::Full).with_jobs(10, 100);
        let mut integration = Random::new(3).integration(&config, now - Duration::days(1));
        let len = integration.applications.len();
        assert!(len > 3 * UPDATE_BLOCK && integration.updated_bounds_hold());
        let newest = integration
            .applications
            .iter()
            .map(|a| a.updated_at)
            .max()
            .unwrap();
        // Nothing updated since: every block is skipped.
        assert_eq!(
            integration.next_updated_from(0, newest + Duration::seconds(1)),
            len
        );

        let changed = 2 * UPDATE_BLOCK + 17;
        integration.update_application(changed, now);
        assert!(integration.updated_bounds_hold());
        let from = integration.next_updated_from(0, now);
        assert_eq!(
            from,
            2 * UPDATE_BLOCK,
            "the changed application's block is read"
        );
        // Blocks are skipped whole; within the changed one, the filter decides.
        assert_eq!(integration.next_updated_from(changed + 1, now), changed + 1);
        assert_eq!(integration.next_updated_from(3 * UPDATE_BLOCK, now), len);
        // A time every application was updated after skips nothing.
        let earliest = integration
            .applications
            .iter()
            .map(|a| a.updated_at)
            .min()
            .unwrap();
        assert_eq!(integration.next_updated_from(5, earliest), 5);
    }
}
