//! The Terraform lifecycle, written once for every resource and data source.
//!
//! A resource says what its schema is and how to create, read, update and delete it through
//! the API ([`ResourceImpl`]); [`Res`] does the rest of the protocol: planning (unknown
//! computed values, replacement, values the server writes differently but means the same),
//! keeping the state consistent with the plan after apply, dropping objects deleted outside
//! Terraform, and import.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::{AttributePath, DataSource, Diagnostic, Diagnostics, DynamicDataSource, DynamicResource, Resource};

use crate::api::{Api, Error, Result};
use crate::schema::{BlockSpec, Mode};
use crate::value::{Ty, Val, decode, encode, same_data, to_json};

/// A value as tf-provider hands it over: the MessagePack document, read with rmpv (which
/// keeps cty's unknown values, extension type 0). tf-provider's own `Value` types cannot
/// hold floats or dynamic values, and its raw value type is not public.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Doc(pub rmpv::Value);

impl Default for Doc {
    fn default() -> Self {
        Doc(rmpv::Value::Nil)
    }
}

/// The provider's configuration, shared by the provider and everything it serves: Terraform
/// configures the provider after the resources exist, and every call takes `&self`.
#[derive(Debug, Default)]
pub struct Shared {
    api: RwLock<Option<Api>>,
}

impl Shared {
    pub fn set(&self, api: Api) {
        if let Ok(mut g) = self.api.write() {
            *g = Some(api);
        }
    }
    pub fn api(&self) -> Result<Api> {
        self.api
            .read()
            .ok()
            .and_then(|g| g.clone())
            .ok_or_else(|| Error::new("the tessera provider is not configured (endpoint and api_key)"))
    }
}

/// Diagnostics collected while validating.
#[derive(Debug, Default)]
pub struct Diags(pub Vec<Error>);

impl Diags {
    pub fn error(&mut self, attribute: &str, summary: impl Into<String>) {
        self.0.push(Error::new(summary).at(attribute));
    }
}

fn add(diags: &mut Diagnostics, e: Error) {
    let attribute = e.attribute.map_or_else(AttributePath::root, AttributePath::new);
    // Built directly: Diagnostic::new would append a backtrace when RUST_BACKTRACE is set.
    diags.add_error(Diagnostic { summary: e.summary.into(), detail: e.detail.into(), attribute });
}

/// The planned value where the plan knew it, the applied one where it did not.
fn merge_known(planned: &Val, new: &Val) -> Val {
    if planned.is_wholly_known() {
        return planned.clone();
    }
    match (planned, new) {
        (Val::Obj(p), Val::Obj(n)) => Val::Obj(
            n.iter()
                .map(|(k, nv)| (k.clone(), p.get(k).map_or_else(|| nv.clone(), |pv| merge_known(pv, nv))))
                .collect(),
        ),
        (Val::List(p), Val::List(n)) if p.len() == n.len() => {
            Val::List(p.iter().zip(n).map(|(a, b)| merge_known(a, b)).collect())
        }
        _ => new.clone(),
    }
}

/// Sets one attribute of an object value.
pub fn set(obj: &mut Val, name: &str, v: Val) {
    if let Val::Obj(m) = obj {
        m.insert(name.to_owned(), v);
    }
}

/// An object of the block's type with every attribute null.
pub fn empty_object(spec: &BlockSpec) -> Val {
    let Ty::Obj(fields) = spec.ty() else { return Val::Null };
    Val::Obj(fields.into_keys().map(|k| (k, Val::Null)).collect())
}

#[async_trait]
pub trait ResourceImpl: Send + Sync + 'static {
    /// The type name without the provider prefix: `user` is `tessera_user`.
    fn name(&self) -> &'static str;
    fn schema(&self) -> BlockSpec;
    /// Checks the configuration (values may be unknown).
    fn validate(&self, _config: &Val, _d: &mut Diags) {}
    /// Arguments whose change replaces the object.
    fn force_new(&self) -> &'static [&'static str] {
        &[]
    }
    /// Computed attributes the server may change whenever any argument changes.
    fn volatile(&self) -> &'static [&'static str] {
        &[]
    }
    /// Whether two known values of an attribute mean the same (the server normalises some
    /// values: `10.0.0.1` is `10.0.0.1/32`, `Ann@Example.com` is `ann@example.com`). `prior`
    /// is the state's value; `other` the planned one (in a plan) or the server's (in a read).
    /// Null, empty strings and empty lists already count as the same.
    fn equivalent(&self, _attr: &str, _prior: &Val, _other: &Val) -> bool {
        false
    }
    /// Last touches to a plan (`prior` is None when creating).
    fn plan(&self, _prior: Option<&Val>, _config: &Val, _planned: &mut Val) {}
    async fn create(&self, api: &Api, planned: &Val) -> Result<Val>;
    /// The object as it is now, or None when it no longer exists.
    async fn read(&self, api: &Api, prior: &Val) -> Result<Option<Val>>;
    async fn update(&self, api: &Api, prior: &Val, planned: &Val) -> Result<Val>;
    /// Deleting an object that is already gone is not an error.
    async fn delete(&self, api: &Api, prior: &Val) -> Result<()>;
    /// The object with this import id, read from nothing but the id.
    async fn import(&self, api: &Api, id: &str) -> Result<Option<Val>> {
        let mut prior = empty_object(&self.schema());
        set(&mut prior, "id", Val::str(id));
        self.read(api, &prior).await
    }
}

/// A [`ResourceImpl`] served to Terraform.
pub struct Res {
    imp: Box<dyn ResourceImpl>,
    shared: Arc<Shared>,
    spec: BlockSpec,
    ty: Ty,
}

impl Res {
    pub fn boxed(imp: impl ResourceImpl, shared: Arc<Shared>) -> (String, Box<dyn DynamicResource>) {
        let spec = imp.schema();
        let ty = spec.ty();
        let name = imp.name().to_owned();
        (name, Box::new(Res { imp: Box::new(imp), shared, spec, ty }))
    }

    fn decode(&self, doc: &Doc, diags: &mut Diagnostics) -> Option<Val> {
        match decode(&doc.0, &self.ty) {
            Ok(v) => Some(v),
            Err(e) => {
                add(diags, Error::new(format!("cannot decode a tessera_{} value: {e}", self.imp.name())));
                None
            }
        }
    }

    fn encode(&self, v: &Val) -> Doc {
        Doc(encode(v, &self.ty))
    }

    fn api(&self, diags: &mut Diagnostics) -> Option<Api> {
        match self.shared.api() {
            Ok(a) => Some(a),
            Err(e) => {
                add(diags, e);
                None
            }
        }
    }

    fn attr_ty(&self, name: &str) -> Option<&Ty> {
        match &self.ty {
            Ty::Obj(f) => f.get(name),
            _ => None,
        }
    }

    /// Whether two values of an attribute mean the same thing.
    fn same(&self, name: &str, a: &Val, b: &Val) -> bool {
        if a == b {
            return true;
        }
        if !a.is_wholly_known() || !b.is_wholly_known() {
            return false;
        }
        if a.is_empty_like() && b.is_empty_like() {
            return true;
        }
        let data_equal = match self.attr_ty(name) {
            Some(Ty::Dyn) => same_data(&to_json(a), &to_json(b)),
            Some(Ty::Set(_)) => {
                let mut x: Vec<String> =
                    a.as_list().unwrap_or_default().iter().map(|v| to_json(v).to_string()).collect();
                let mut y: Vec<String> =
                    b.as_list().unwrap_or_default().iter().map(|v| to_json(v).to_string()).collect();
                x.sort();
                y.sort();
                x == y
            }
            _ => false,
        };
        data_equal || self.imp.equivalent(name, a, b)
    }

    /// The names of every top-level attribute and block.
    fn names(&self) -> Vec<&'static str> {
        self.spec.attrs.iter().map(|a| a.name).chain(self.spec.blocks.iter().map(|b| b.0)).collect()
    }

    /// After apply, every value the plan knew must be in the state as planned.
    fn settle(&self, planned: &Val, mut new: Val) -> Val {
        for name in self.names() {
            let (p, n) = (planned.get(name), new.get(name));
            // A set's elements have no positions to match up: partly unknown, it is the server's.
            let merged = match self.attr_ty(name) {
                Some(Ty::Set(_)) if !p.is_wholly_known() => n.clone(),
                _ => merge_known(p, n),
            };
            set(&mut new, name, merged);
        }
        new.unknown_to_null()
    }

    /// Keeps the prior form of every value the server wrote differently but means the same
    /// (a null stays null where the server answers an empty string or list).
    fn keep_prior_forms(&self, prior: &Val, mut new: Val) -> Val {
        for name in self.names() {
            let p = prior.get(name);
            // A computed attribute takes the server's value when the state has none: its
            // configuration, if any, is then compared with that value.
            let computed = self.spec.attr(name).is_some_and(|a| a.is_computed());
            if (!computed || !p.is_null()) && self.same(name, p, new.get(name)) {
                set(&mut new, name, p.clone());
            }
        }
        new.unknown_to_null()
    }
}

#[async_trait]
impl Resource for Res {
    type State<'a> = Doc;
    type PrivateState<'a> = Doc;
    type ProviderMetaState<'a> = Doc;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<tf_provider::schema::Schema> {
        Some(self.spec.to_schema())
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Doc) -> Option<()> {
        let config = self.decode(&config, diags)?;
        let mut d = Diags::default();
        self.imp.validate(&config, &mut d);
        for e in d.0 {
            add(diags, e);
        }
        Some(())
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        state: Doc,
        private_state: Doc,
        _provider_meta_state: Doc,
    ) -> Option<(Doc, Doc)> {
        let prior = self.decode(&state, diags)?;
        let api = self.api(diags)?;
        match self.imp.read(&api, &prior).await {
            Ok(Some(new)) => Some((self.encode(&self.keep_prior_forms(&prior, new)), private_state)),
            Ok(None) => None,
            Err(e) => {
                add(diags, e.ctx(&format!("reading tessera_{}", self.imp.name())));
                Some((state, private_state))
            }
        }
    }

    async fn plan_create<'a>(
        &self,
        diags: &mut Diagnostics,
        proposed_state: Doc,
        config_state: Doc,
        _provider_meta_state: Doc,
    ) -> Option<(Doc, Doc)> {
        let mut planned = self.decode(&proposed_state, diags)?;
        let config = self.decode(&config_state, diags)?;
        for a in &self.spec.attrs {
            if a.mode == Mode::Computed || (a.mode == Mode::OptionalComputed && config.get(a.name).is_null()) {
                set(&mut planned, a.name, Val::Unknown);
            }
        }
        self.imp.plan(None, &config, &mut planned);
        Some((self.encode(&planned), Doc::default()))
    }

    async fn plan_update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Doc,
        proposed_state: Doc,
        config_state: Doc,
        prior_private_state: Doc,
        _provider_meta_state: Doc,
    ) -> Option<(Doc, Doc, Vec<AttributePath>)> {
        let prior = self.decode(&prior_state, diags)?;
        let mut planned = self.decode(&proposed_state, diags)?;
        let config = self.decode(&config_state, diags)?;
        // Terraform accepts the prior value in place of a configured one that means the same.
        for name in self.spec.argument_names() {
            let (p, n) = (prior.get(name), planned.get(name));
            if !p.is_null() && !config.get(name).is_null() && self.same(name, p, n) {
                let p = p.clone();
                set(&mut planned, name, p);
            }
        }
        let changed: Vec<&'static str> =
            self.spec.argument_names().into_iter().filter(|n| planned.get(n) != prior.get(n)).collect();
        if !changed.is_empty() {
            for v in self.imp.volatile() {
                if config.get(v).is_null() {
                    set(&mut planned, v, Val::Unknown);
                }
            }
        }
        self.imp.plan(Some(&prior), &config, &mut planned);
        let replace =
            changed.iter().filter(|c| self.imp.force_new().contains(c)).map(|c| AttributePath::new(*c)).collect();
        Some((self.encode(&planned), prior_private_state, replace))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Doc,
        prior_private_state: Doc,
        _provider_meta_state: Doc,
    ) -> Option<Doc> {
        Some(prior_private_state)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned_state: Doc,
        _config_state: Doc,
        planned_private_state: Doc,
        _provider_meta_state: Doc,
    ) -> Option<(Doc, Doc)> {
        let planned = self.decode(&planned_state, diags)?;
        let api = self.api(diags)?;
        match self.imp.create(&api, &planned).await {
            Ok(new) => Some((self.encode(&self.settle(&planned, new)), planned_private_state)),
            Err(e) => {
                add(diags, e.ctx(&format!("creating tessera_{}", self.imp.name())));
                None
            }
        }
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Doc,
        planned_state: Doc,
        _config_state: Doc,
        planned_private_state: Doc,
        _provider_meta_state: Doc,
    ) -> Option<(Doc, Doc)> {
        let prior = self.decode(&prior_state, diags)?;
        let planned = self.decode(&planned_state, diags)?;
        let api = self.api(diags)?;
        match self.imp.update(&api, &prior, &planned).await {
            Ok(new) => Some((self.encode(&self.settle(&planned, new)), planned_private_state)),
            Err(e) => {
                add(diags, e.ctx(&format!("updating tessera_{}", self.imp.name())));
                None
            }
        }
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Doc,
        _planned_private_state: Doc,
        _provider_meta_state: Doc,
    ) -> Option<()> {
        let prior = self.decode(&prior_state, diags)?;
        let api = self.api(diags)?;
        match self.imp.delete(&api, &prior).await {
            Ok(()) => Some(()),
            Err(e) => {
                add(diags, e.ctx(&format!("deleting tessera_{}", self.imp.name())));
                None
            }
        }
    }

    async fn import<'a>(&self, diags: &mut Diagnostics, id: String) -> Option<(Doc, Doc)> {
        let api = self.api(diags)?;
        match self.imp.import(&api, id.trim()).await {
            Ok(Some(state)) => {
                // As a read from nothing: empty values the configuration leaves out stay null.
                let state = self.keep_prior_forms(&empty_object(&self.spec), state);
                Some((self.encode(&state), Doc::default()))
            }
            Ok(None) => {
                add(diags, Error::new(format!("cannot import tessera_{} {id}: it does not exist", self.imp.name())));
                None
            }
            Err(e) => {
                add(diags, e.ctx(&format!("importing tessera_{} {id}", self.imp.name())));
                None
            }
        }
    }
}

// ---- data sources -------------------------------------------------------------------------

#[async_trait]
pub trait DataImpl: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn schema(&self) -> BlockSpec;
    fn validate(&self, _config: &Val, _d: &mut Diags) {}
    async fn read(&self, api: &Api, config: &Val) -> Result<Val>;
}

/// A [`DataImpl`] served to Terraform.
pub struct Data {
    imp: Box<dyn DataImpl>,
    shared: Arc<Shared>,
    spec: BlockSpec,
    ty: Ty,
}

impl Data {
    pub fn boxed(imp: impl DataImpl, shared: Arc<Shared>) -> (String, Box<dyn DynamicDataSource>) {
        let spec = imp.schema();
        let ty = spec.ty();
        let name = imp.name().to_owned();
        (name, Box::new(Data { imp: Box::new(imp), shared, spec, ty }))
    }

    fn decode(&self, doc: &Doc, diags: &mut Diagnostics) -> Option<Val> {
        match decode(&doc.0, &self.ty) {
            Ok(v) => Some(v),
            Err(e) => {
                add(diags, Error::new(format!("cannot decode a {} value: {e}", self.imp.name())));
                None
            }
        }
    }
}

#[async_trait]
impl DataSource for Data {
    type State<'a> = Doc;
    type ProviderMetaState<'a> = Doc;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<tf_provider::schema::Schema> {
        Some(self.spec.to_schema())
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Doc) -> Option<()> {
        let config = self.decode(&config, diags)?;
        let mut d = Diags::default();
        self.imp.validate(&config, &mut d);
        for e in d.0 {
            add(diags, e);
        }
        Some(())
    }

    async fn read<'a>(&self, diags: &mut Diagnostics, config: Doc, _provider_meta: Doc) -> Option<Doc> {
        let config = self.decode(&config, diags)?;
        let api = match self.shared.api() {
            Ok(a) => a,
            Err(e) => {
                add(diags, e);
                return None;
            }
        };
        match self.imp.read(&api, &config).await {
            Ok(state) => Some(Doc(encode(&state.unknown_to_null(), &self.ty))),
            Err(e) => {
                add(diags, e.ctx(&format!("reading data.tessera_{}", self.imp.name())));
                None
            }
        }
    }
}
