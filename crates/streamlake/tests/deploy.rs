//! The operations material in `deploy/` (Grafana dashboard, Prometheus alert rules, their
//! promtool unit tests, the scrape config) agrees with `docs/metrics.md`: `deploy/check.py`
//! checks every metric, label and runbook link, and runs promtool on the Prometheus files.

use std::process::Command;

#[test]
fn dashboard_alerts_and_scrape_config_pass_the_deploy_checker_with_promtool() {
    let promtool = Command::new("promtool").arg("--version").output();
    assert!(
        promtool.is_ok_and(|o| o.status.success()),
        "promtool is not on PATH: `scripts/setup.sh --test` installs it (Debian package \
         `prometheus`); the deploy checks need it to validate and unit-test the alert rules"
    );
    let root = streamlake_test_support::repo_root();
    let out = Command::new("python3")
        .args(["deploy/check.py", "--require-promtool"])
        .current_dir(&root)
        .output()
        .expect("python3 runs deploy/check.py");
    assert!(
        out.status.success(),
        "deploy/check.py failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
