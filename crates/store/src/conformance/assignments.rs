//! Conformance cases: assignable roles given to users and groups.

use super::*;
use tessera_domain::role::Assignee;

fn group(f: &mut Fixture, name: &str) -> Group {
    Group {
        id: GroupId::generate(&mut f.rng),
        org_id: f.org,
        display_name: name.into(),
        description: String::new(),
        date_created: T0,
    }
}

/// Assigning is idempotent and checked, an assigned role's policies join the user's (directly
/// and through a group, and only while the role is assignable), the lists name the assignees,
/// and deleting a user, group or role takes its assignments with it.
pub async fn assigned_roles_join_a_users_permissions(store: &dyn Store) {
    let mut f = Fixture::new(store).await;
    let (ann, bob) = (f.user("ann@example.com"), f.user("bob@example.com"));
    store.create_user(&ann, None).await.unwrap();
    store.create_user(&bob, None).await.unwrap();
    let g = group(&mut f, "ops");
    store.create_group(&g).await.unwrap();
    store.add_group_member(f.org, g.id, bob.id).await.unwrap();
    let mut role = Role { role_type: RoleType::Assignable, ..f.role("reader") };
    store.create_role(&role).await.unwrap();
    let p = f.policy("read", r#"{"Statement":[{"Effect":"Allow","Action":"iam.user.Read"}]}"#);
    store.create_policy(&p).await.unwrap();
    store.attach_policy(f.org, p.id, PolicyTarget::Role(role.id)).await.unwrap();

    assert!(store.assign_role(f.org, role.id, Assignee::User(ann.id), T0).await.unwrap());
    assert!(!store.assign_role(f.org, role.id, Assignee::User(ann.id), T0).await.unwrap(), "idempotent");
    assert!(store.assign_role(f.org, role.id, Assignee::Group(g.id), Timestamp(T0.0 + 1)).await.unwrap());
    let ghost = UserId::generate(&mut f.rng);
    assert_eq!(
        store.assign_role(f.org, role.id, Assignee::User(ghost), T0).await,
        Err(StoreError::NotFound(Entity::User))
    );
    let no_role = RoleId::generate(&mut f.rng);
    assert_eq!(
        store.assign_role(f.org, no_role, Assignee::User(ann.id), T0).await,
        Err(StoreError::NotFound(Entity::Role))
    );
    let other = OrgId::generate(&mut f.rng);
    assert_eq!(
        store.assign_role(other, role.id, Assignee::User(ann.id), T0).await,
        Err(StoreError::NotFound(Entity::Role)),
        "another organization's role is not found"
    );

    assert_eq!(store.user_policy_documents(f.org, ann.id).await.unwrap(), vec![p.document.clone()], "direct");
    assert_eq!(store.user_policy_documents(f.org, bob.id).await.unwrap(), vec![p.document.clone()], "via the group");
    let roles = store.roles_of_user(f.org, bob.id).await.unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!(
        (roles[0].role.id, roles[0].assignee, roles[0].assignee_name.as_str()),
        (role.id, Assignee::Group(g.id), "ops")
    );
    assert_eq!(roles[0].date_assigned, Timestamp(T0.0 + 1));

    let users = store.list_role_assignments(f.org, role.id, false, PageRequest::first(10)).await.unwrap();
    assert_eq!(users.items.len(), 1);
    assert_eq!(
        (users.items[0].assignee, users.items[0].assignee_name.as_str()),
        (Assignee::User(ann.id), "ann@example.com")
    );
    let groups = store.list_role_assignments(f.org, role.id, true, PageRequest::first(10)).await.unwrap();
    assert_eq!(groups.items.iter().map(|a| a.assignee).collect::<Vec<_>>(), vec![Assignee::Group(g.id)]);

    // A role switched to assumable no longer grants what it was assigned for.
    role.role_type = RoleType::Assumable;
    store.update_role(&role).await.unwrap();
    assert!(store.user_policy_documents(f.org, ann.id).await.unwrap().is_empty());
    assert!(store.roles_of_user(f.org, ann.id).await.unwrap().is_empty());
    role.role_type = RoleType::Assignable;
    store.update_role(&role).await.unwrap();

    assert!(store.unassign_role(f.org, role.id, Assignee::User(ann.id)).await.unwrap());
    assert!(!store.unassign_role(f.org, role.id, Assignee::User(ann.id)).await.unwrap());
    assert!(store.user_policy_documents(f.org, ann.id).await.unwrap().is_empty());
    assert!(store.delete_group(f.org, g.id).await.unwrap());
    assert!(store.user_policy_documents(f.org, bob.id).await.unwrap().is_empty(), "the group took its assignment");
    store.assign_role(f.org, role.id, Assignee::User(bob.id), T0).await.unwrap();
    assert!(store.delete_role(f.org, role.id).await.unwrap());
    assert!(store.roles_of_user(f.org, bob.id).await.unwrap().is_empty(), "the role took its assignments");
}
