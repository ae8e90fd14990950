//! The `tessera_iam_session` data source: filters, equality arguments, and results gathered
//! over every page.

use serde_json::json;
use tessera_api_types as wire;

use crate::{Server, Tf, terraform};

const CONFIG: &str = r#"
data "tessera_iam_session" "logins" {
  filter    = "kind eq 'login'"
  status    = "Active"
  page_size = 2
}

data "tessera_iam_session" "ann" {
  user_id_or_email = "ann@example.com"
  orderby          = "create_time"
  page_size        = 1
}

data "tessera_iam_session" "by_handle" {
  session_id = data.tessera_iam_session.ann.results[0].session_id
}

data "tessera_iam_session" "none" {
  filter = "create_time gt now() add P1D"
}

output "total" { value = data.tessera_iam_session.logins.total }
output "emails" { value = sort([for r in data.tessera_iam_session.logins.results : r.user_id_or_email]) }
output "ann" { value = length(data.tessera_iam_session.ann.results) }
output "by_handle" { value = [for r in data.tessera_iam_session.by_handle.results : r.moid] }
output "ann_first" { value = data.tessera_iam_session.ann.results[0].moid }
output "none" { value = data.tessera_iam_session.none.total }
output "kinds" { value = distinct([for r in data.tessera_iam_session.logins.results : r.kind]) }
"#;

#[test]
fn iam_session_data_source_filters_and_pages() {
    let Some(tf_bin) = terraform() else { return };
    let server = Server::start();
    // Three sign-ins: Ann twice, Bob once.
    for (email, times) in [("ann@example.com", 2), ("bob@example.com", 1)] {
        let body = wire::UserCreate {
            email: email.into(),
            first_name: String::new(),
            last_name: String::new(),
            password: Some("a long enough password".into()),
        };
        server.block(server.app().admin.create_user(&body)).expect("user");
        for _ in 0..times {
            let req = wire::SignInRequest {
                email: email.into(),
                password: "a long enough password".into(),
                organization_id: None,
            };
            server.block(server.app().anonymous().sign_in(&req)).expect("sign in");
        }
    }
    let tf = Tf::new(&tf_bin, &server, "data");
    tf.config(CONFIG);
    tf.apply();
    assert_eq!(tf.output("total"), json!(3), "three sign-ins over two pages of two");
    assert_eq!(tf.output("emails"), json!(["ann@example.com", "ann@example.com", "bob@example.com"]));
    assert_eq!(tf.output("kinds"), json!(["login"]));
    assert_eq!(tf.output("ann"), json!(2), "two pages of one");
    assert_eq!(tf.output("by_handle"), json!([tf.output("ann_first")]), "session_id matches one session");
    assert_eq!(tf.output("none"), json!(0));
    tf.assert_no_changes();
}
