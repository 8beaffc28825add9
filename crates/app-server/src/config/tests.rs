#![allow(clippy::result_large_err)] // figment's Jail returns its own large error

use std::path::PathBuf;

use figment::Jail;

use super::*;

fn load() -> Result<Settings, ConfigError> {
    ConfigSource::default().load()
}

#[test]
fn defaults_need_no_file_and_no_environment() {
    Jail::expect_with(|_jail| {
        let settings = load().expect("defaults are valid");
        assert_eq!(settings, Settings::default());
        assert!(settings.database.url.expose().starts_with("sqlite://"));
        assert_eq!(settings.kombo.base_url, "https://api.kombo.dev/v1");
        Ok(())
    });
}

#[test]
fn file_overrides_defaults_and_environment_overrides_file() {
    Jail::expect_with(|jail| {
        jail.create_file(
            DEFAULT_CONFIG_FILE,
            "[sync]\npoll_interval = \"90s\"\nconcurrency = 2\n[kombo]\napi_key = \"from-file\"\n",
        )?;
        jail.set_env("STAGEWATCH_SYNC__CONCURRENCY", "7");
        jail.set_env("STAGEWATCH_KOMBO__API_KEY", "from-env");
        let settings = load().expect("valid");
        assert_eq!(settings.sync.poll_interval, Duration::from_secs(90));
        assert_eq!(settings.sync.concurrency, 7);
        assert_eq!(settings.kombo.api_key.expose(), "from-env");
        Ok(())
    });
}

#[test]
fn an_explicit_file_must_exist() {
    Jail::expect_with(|_jail| {
        let source = ConfigSource {
            file: Some(PathBuf::from("nowhere.toml")),
        };
        let error = source.load().expect_err("missing file");
        assert!(error.to_string().contains("nowhere.toml"), "{error}");
        Ok(())
    });
}

#[test]
fn an_unknown_key_is_refused_by_name() {
    Jail::expect_with(|jail| {
        jail.create_file(DEFAULT_CONFIG_FILE, "[sync]\npoll_intervall = \"90s\"\n")?;
        let error = load().expect_err("typo");
        assert!(error.to_string().contains("poll_intervall"), "{error}");
        Ok(())
    });
}

#[test]
fn a_value_of_the_wrong_type_names_key_value_and_source() {
    Jail::expect_with(|jail| {
        jail.set_env("STAGEWATCH_SYNC__CONCURRENCY", "many");
        let message = load().expect_err("not a number").to_string();
        assert!(message.contains("concurrency"), "{message}");
        assert!(message.contains("many"), "{message}");
        assert!(
            message.contains("STAGEWATCH_SYNC__CONCURRENCY"),
            "{message}"
        );
        Ok(())
    });
}

#[test]
fn an_out_of_range_value_names_key_value_and_expectation() {
    Jail::expect_with(|jail| {
        jail.set_env("STAGEWATCH_SYNC__PAGE_SIZE", "500");
        let message = load().expect_err("above Kombo's maximum").to_string();
        assert!(message.contains("sync.page_size"), "{message}");
        assert!(message.contains("500"), "{message}");
        assert!(message.contains("1 to 250"), "{message}");
        Ok(())
    });
}

#[test]
fn the_per_integration_rate_is_read_and_must_allow_a_request() {
    Jail::expect_with(|jail| {
        assert_eq!(
            load()
                .expect("defaults")
                .kombo
                .requests_per_second_per_integration,
            adapters_kombo::DEFAULT_REQUESTS_PER_SECOND_PER_INTEGRATION
        );
        jail.set_env("STAGEWATCH_KOMBO__REQUESTS_PER_SECOND_PER_INTEGRATION", "8");
        assert_eq!(
            load()
                .expect("valid")
                .kombo
                .requests_per_second_per_integration,
            8
        );
        jail.set_env("STAGEWATCH_KOMBO__REQUESTS_PER_SECOND_PER_INTEGRATION", "0");
        let message = load().expect_err("no request allowed").to_string();
        assert!(
            message.contains("kombo.requests_per_second_per_integration"),
            "{message}"
        );
        Ok(())
    });
}

#[test]
fn a_bad_database_url_is_refused() {
    Jail::expect_with(|jail| {
        jail.set_env("STAGEWATCH_DATABASE__URL", "mysql://root@localhost/db");
        let message = load().expect_err("unsupported").to_string();
        assert!(message.contains("database.url"), "{message}");
        Ok(())
    });
}

#[test]
fn describe_masks_secrets_and_names_sources() {
    Jail::expect_with(|jail| {
        jail.create_file(
            DEFAULT_CONFIG_FILE,
            "[kombo]\napi_key = \"sk-very-secret\"\n",
        )?;
        jail.set_env(
            "STAGEWATCH_DATABASE__URL",
            "postgres://app:hunter2@db.internal/stagewatch",
        );
        let source = ConfigSource::default();
        let figment = source.figment().expect("figment");
        let settings = source.load().expect("valid");
        let lines = describe(&settings, &figment);
        let rendered = format!("{lines:?}");
        assert!(!rendered.contains("sk-very-secret"), "{rendered}");
        assert!(!rendered.contains("hunter2"), "{rendered}");
        let line = |key: &str| lines.iter().find(|l| l.key == key).expect(key).clone();
        assert!(line("kombo.api_key").source.contains(DEFAULT_CONFIG_FILE));
        assert_eq!(
            line("database.url").source,
            "environment variable STAGEWATCH_DATABASE__URL"
        );
        assert_eq!(line("sync.concurrency").source, "default");
        assert!(line("database.url").value.contains("db.internal"));
        Ok(())
    });
}

#[test]
fn the_example_file_sets_every_key_and_is_valid() {
    let example = include_str!("../../../../deploy/stagewatch.example.toml");
    Jail::expect_with(|jail| {
        jail.create_file(DEFAULT_CONFIG_FILE, example)?;
        let source = ConfigSource::default();
        load().expect("the example is valid");
        let figment = source.figment().expect("figment");
        let settings = source.load().expect("valid");
        for line in describe(&settings, &figment) {
            assert!(
                example.contains(&format!("# {} =", line.key.rsplit('.').next().unwrap()))
                    || example.contains(&format!("{} =", line.key.rsplit('.').next().unwrap())),
                "deploy/stagewatch.example.toml does not document `{}`",
                line.key
            );
        }
        Ok(())
    });
}

#[test]
fn the_configuration_reference_documents_every_key() {
    let reference = include_str!("../../../../docs/configuration.md");
    for line in describe(
        &Settings::default(),
        &ConfigSource::default().figment().unwrap(),
    ) {
        assert!(
            reference.contains(&format!("`{}`", line.key)),
            "docs/configuration.md does not document `{}`",
            line.key
        );
    }
}

#[test]
fn the_webhook_retry_schedule_comes_from_a_list_of_durations() {
    Jail::expect_with(|jail| {
        jail.set_env("STAGEWATCH_WEBHOOKS__RETRY_WAITS", r#"["1s", "2s", "1m"]"#);
        let settings = load().expect("valid");
        assert_eq!(
            settings.webhooks.retry_waits,
            [1, 2, 60].map(Duration::from_secs).to_vec()
        );
        jail.set_env("STAGEWATCH_WEBHOOKS__RETRY_WAITS", "[]");
        let message = load().expect_err("no retry at all").to_string();
        assert!(message.contains("webhooks.retry_waits"), "{message}");
        Ok(())
    });
}
