//! Errors read well: provider settings, validation, API refusals, imports of nothing, a bad
//! filter. Run with RUST_BACKTRACE=1, which must not turn them into crash reports.

use tessera_testkit::ADMIN_KEY;

use crate::{Server, Tf, terraform};

fn expect_error(tf: &Tf, args: &[&str], needle: &str) {
    let r = tf.run(args);
    assert_eq!(r.code, 1, "terraform {} should fail:\n{}", args.join(" "), r.text());
    assert!(r.stderr.contains(needle), "the error does not say {needle:?}:\n{}", r.stderr);
    assert!(!r.stderr.contains("stack backtrace") && !r.stderr.contains("rust_begin_unwind"), "{}", r.stderr);
}

const PLAN: &[&str] = &["plan", "-input=false", "-no-color"];

#[test]
fn errors_are_clean_and_settings_come_from_the_block_or_the_environment() {
    let Some(tf_bin) = terraform() else { return };
    let server = Server::start();
    let mut tf = Tf::new(&tf_bin, &server, "errors");
    tf.set_env("RUST_BACKTRACE", "1");

    // Validation, before any API call.
    tf.config(
        r#"
resource "tessera_organization_role_trust" "t" {
  role  = "00000000-0000-0000-0000-000000000001"
  user  = "00000000-0000-0000-0000-000000000002"
  group = "00000000-0000-0000-0000-000000000003"
  hour_start = 9
}
"#,
    );
    expect_error(&tf, PLAN, "set only one of user and group");
    expect_error(&tf, PLAN, "hour_start and hour_end go together");
    tf.config(r#"resource "tessera_organization_role_session" "s" { session_name = "x" }"#);
    expect_error(&tf, PLAN, "one of user or user_id is required");
    tf.config(r#"resource "tessera_plugin_session" "p" { config = { cookie_nme = "x" } }"#);
    expect_error(&tf, PLAN, "config.cookie_nme is not a setting of the session plugin");

    // The API's refusal, with its message.
    tf.config(
        r#"
resource "tessera_organization_role" "r" {
  name = "r"
  type = "assumable"
}
resource "tessera_organization_role" "dup" {
  name = "r"
  type = "assumable"
}
"#,
    );
    let r = tf.run(&["apply", "-input=false", "-no-color", "-auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.text());
    assert!(r.stderr.contains("creating tessera_organization_role") && r.stderr.contains("(409)"), "{}", r.stderr);
    tf.destroy();

    // Importing an object that does not exist.
    tf.config(r#"resource "tessera_group" "g" { name = "g" }"#);
    expect_error(
        &tf,
        &["import", "-input=false", "-no-color", "tessera_group.g", "00000000-0000-0000-0000-00000000beef"],
        "cannot import tessera_group 00000000-0000-0000-0000-00000000beef: it does not exist",
    );

    // A bad filter is the server's message.
    tf.config(r#"data "tessera_iam_session" "bad" { filter = "status eq" }"#);
    expect_error(&tf, PLAN, "reading data.tessera_iam_session");

    // Settings: no key at all; a wrong key; then both from the provider block alone.
    tf.config(r#"resource "tessera_group" "g" { name = "g" }"#);
    tf.unset_env("TESSERA_API_KEY");
    expect_error(&tf, &["apply", "-input=false", "-no-color", "-auto-approve"], "api_key is required");
    tf.set_env("TESSERA_API_KEY", "tessera_ak_wrong");
    expect_error(&tf, &["apply", "-input=false", "-no-color", "-auto-approve"], "(401)");
    tf.unset_env("TESSERA_API_KEY");
    tf.unset_env("TESSERA_ENDPOINT");
    tf.config(&format!(
        r#"
provider "tessera" {{
  endpoint = "{}"
  api_key  = "{ADMIN_KEY}"
}}
resource "tessera_group" "g" {{ name = "g" }}
"#,
        server.url
    ));
    tf.apply();
    tf.assert_no_changes();
    tf.destroy();
}
