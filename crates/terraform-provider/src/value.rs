//! Terraform values as the provider sees them, and their MessagePack wire form (cty's).
//!
//! Terraform sends and expects every object as cty MessagePack: unknown values are the
//! extension type 0, numbers are integers, floats or decimal strings, and a value of a
//! `dynamic` attribute is a pair `[type JSON, value]`. [`decode`] and [`encode`] translate
//! between that and [`Val`], guided by the attribute types ([`Ty`]).
//!
//! Non-integral numbers are written as decimal strings: Terraform parses `3.79` from HCL at
//! 512-bit precision, and only the string form round-trips to exactly that number (a float64
//! would come back as 3.7899999999999998…, which Terraform sees as a different value).

use std::collections::BTreeMap;

use rmpv::Value as Mp;
use serde_json::Value as Json;

/// A cty type, as far as the provider needs types.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    Str,
    Num,
    Bool,
    List(Box<Ty>),
    Set(Box<Ty>),
    Map(Box<Ty>),
    Obj(BTreeMap<String, Ty>),
    Tuple(Vec<Ty>),
    /// `dynamic`: any type, carried with the value.
    Dyn,
}

impl Ty {
    pub fn list(t: Ty) -> Ty {
        Ty::List(Box::new(t))
    }
    pub fn set(t: Ty) -> Ty {
        Ty::Set(Box::new(t))
    }
    pub fn obj(fields: &[(&str, Ty)]) -> Ty {
        Ty::Obj(fields.iter().map(|(k, t)| ((*k).to_owned(), t.clone())).collect())
    }

    /// Parses cty's JSON form of a type (`"string"`, `["list", "string"]`, ...).
    pub fn from_json(j: &Json) -> Result<Ty, String> {
        match j {
            Json::String(s) => match s.as_str() {
                "string" => Ok(Ty::Str),
                "number" => Ok(Ty::Num),
                "bool" => Ok(Ty::Bool),
                "dynamic" => Ok(Ty::Dyn),
                other => Err(format!("unknown type {other}")),
            },
            Json::Array(a) if a.len() >= 2 => {
                let kind = a[0].as_str().unwrap_or_default();
                match kind {
                    "list" => Ok(Ty::list(Ty::from_json(&a[1])?)),
                    "set" => Ok(Ty::set(Ty::from_json(&a[1])?)),
                    "map" => Ok(Ty::Map(Box::new(Ty::from_json(&a[1])?))),
                    "object" => {
                        let fields = a[1].as_object().ok_or("object type without attributes")?;
                        let mut out = BTreeMap::new();
                        for (k, v) in fields {
                            out.insert(k.clone(), Ty::from_json(v)?);
                        }
                        Ok(Ty::Obj(out))
                    }
                    "tuple" => {
                        let items = a[1].as_array().ok_or("tuple type without elements")?;
                        Ok(Ty::Tuple(items.iter().map(Ty::from_json).collect::<Result<_, _>>()?))
                    }
                    other => Err(format!("unknown type {other}")),
                }
            }
            other => Err(format!("unknown type {other}")),
        }
    }

    /// cty's JSON form of this type.
    pub fn to_json(&self) -> Json {
        match self {
            Ty::Str => Json::from("string"),
            Ty::Num => Json::from("number"),
            Ty::Bool => Json::from("bool"),
            Ty::Dyn => Json::from("dynamic"),
            Ty::List(t) => Json::Array(vec!["list".into(), t.to_json()]),
            Ty::Set(t) => Json::Array(vec!["set".into(), t.to_json()]),
            Ty::Map(t) => Json::Array(vec!["map".into(), t.to_json()]),
            Ty::Obj(f) => Json::Array(vec![
                "object".into(),
                Json::Object(f.iter().map(|(k, t)| (k.clone(), t.to_json())).collect()),
            ]),
            Ty::Tuple(ts) => Json::Array(vec!["tuple".into(), Json::Array(ts.iter().map(Ty::to_json).collect())]),
        }
    }
}

/// A Terraform value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Val {
    /// Known only after apply.
    Unknown,
    #[default]
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    /// A list, set or tuple.
    List(Vec<Val>),
    /// An object or map.
    Obj(BTreeMap<String, Val>),
    /// The value of a `dynamic` attribute, with its concrete type (cty's type JSON).
    Dyn(Json, Box<Val>),
}

impl Val {
    pub fn str(s: impl Into<String>) -> Val {
        Val::Str(s.into())
    }
    pub fn opt_str(s: Option<impl Into<String>>) -> Val {
        s.map_or(Val::Null, |s| Val::Str(s.into()))
    }
    pub fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Val {
        Val::List(items.into_iter().map(|s| Val::Str(s.as_ref().to_owned())).collect())
    }
    pub fn num(n: impl Into<f64>) -> Val {
        Val::Num(n.into())
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self, Val::Unknown)
    }
    /// Known all the way down (no unknown value inside).
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Val::Unknown => false,
            Val::List(v) => v.iter().all(Val::is_wholly_known),
            Val::Obj(m) => m.values().all(Val::is_wholly_known),
            Val::Dyn(_, v) => v.is_wholly_known(),
            _ => true,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            Val::Dyn(_, v) => v.as_str(),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            Val::Dyn(_, v) => v.as_f64(),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        self.as_f64().map(|n| n as i64)
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Val::Bool(b) => Some(*b),
            Val::Dyn(_, v) => v.as_bool(),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Val]> {
        match self {
            Val::List(v) => Some(v),
            Val::Dyn(_, v) => v.as_list(),
            _ => None,
        }
    }
    pub fn as_obj(&self) -> Option<&BTreeMap<String, Val>> {
        match self {
            Val::Obj(m) => Some(m),
            Val::Dyn(_, v) => v.as_obj(),
            _ => None,
        }
    }
    /// The strings of a list or set of strings (unknown or null elements are skipped).
    pub fn as_strings(&self) -> Option<Vec<String>> {
        self.as_list().map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
    }
    /// The attribute `name` of an object (Null when absent or not an object).
    pub fn get(&self, name: &str) -> &Val {
        static NULL: Val = Val::Null;
        self.as_obj().and_then(|m| m.get(name)).unwrap_or(&NULL)
    }
    /// Null, an empty string, an empty collection: "nothing set".
    pub fn is_empty_like(&self) -> bool {
        match self {
            Val::Null => true,
            Val::Str(s) => s.is_empty(),
            Val::List(v) => v.is_empty(),
            Val::Obj(m) => m.is_empty(),
            Val::Dyn(_, v) => v.is_empty_like(),
            _ => false,
        }
    }
    /// Unknown values anywhere inside become null (a state must be wholly known).
    pub fn unknown_to_null(self) -> Val {
        match self {
            Val::Unknown => Val::Null,
            Val::List(v) => Val::List(v.into_iter().map(Val::unknown_to_null).collect()),
            Val::Obj(m) => Val::Obj(m.into_iter().map(|(k, v)| (k, v.unknown_to_null())).collect()),
            Val::Dyn(t, v) => Val::Dyn(t, Box::new(v.unknown_to_null())),
            other => other,
        }
    }
}

// ---- MessagePack --------------------------------------------------------------------------

/// Decodes a MessagePack document guided by `ty`.
pub fn decode_bytes(bytes: &[u8], ty: &Ty) -> Result<Val, String> {
    if bytes.is_empty() {
        return Ok(Val::Null);
    }
    let mp = rmpv::decode::read_value(&mut &bytes[..]).map_err(|e| format!("invalid MessagePack: {e}"))?;
    decode(&mp, ty)
}

/// Encodes a value of type `ty` as a MessagePack document.
pub fn encode_bytes(v: &Val, ty: &Ty) -> Vec<u8> {
    let mut out = vec![];
    // Writing to a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, &encode(v, ty));
    out
}

fn mp_str(mp: &Mp) -> Option<&str> {
    match mp {
        Mp::String(s) => s.as_str(),
        _ => None,
    }
}

pub fn decode(mp: &Mp, ty: &Ty) -> Result<Val, String> {
    match mp {
        Mp::Ext(..) => return Ok(Val::Unknown),
        Mp::Nil => return Ok(Val::Null),
        _ => {}
    }
    match ty {
        Ty::Str => mp_str(mp).map(Val::str).ok_or_else(|| format!("expected a string, found {mp}")),
        Ty::Num => match mp {
            Mp::Integer(i) => i.as_f64().map(Val::Num).ok_or_else(|| format!("bad integer {i}")),
            Mp::F32(f) => Ok(Val::Num(f64::from(*f))),
            Mp::F64(f) => Ok(Val::Num(*f)),
            Mp::String(s) => s
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .map(Val::Num)
                .ok_or_else(|| format!("expected a number, found {mp}")),
            other => Err(format!("expected a number, found {other}")),
        },
        Ty::Bool => match mp {
            Mp::Boolean(b) => Ok(Val::Bool(*b)),
            other => Err(format!("expected a bool, found {other}")),
        },
        Ty::List(t) | Ty::Set(t) => match mp {
            Mp::Array(items) => Ok(Val::List(items.iter().map(|i| decode(i, t)).collect::<Result<_, _>>()?)),
            other => Err(format!("expected a list, found {other}")),
        },
        Ty::Tuple(ts) => match mp {
            Mp::Array(items) => Ok(Val::List(
                items
                    .iter()
                    .zip(ts.iter().chain(std::iter::repeat(&Ty::Dyn)))
                    .map(|(i, t)| decode(i, t))
                    .collect::<Result<_, _>>()?,
            )),
            other => Err(format!("expected a tuple, found {other}")),
        },
        Ty::Map(t) => match mp {
            Mp::Map(pairs) => {
                let mut out = BTreeMap::new();
                for (k, v) in pairs {
                    let k = mp_str(k).ok_or("map key is not a string")?;
                    out.insert(k.to_owned(), decode(v, t)?);
                }
                Ok(Val::Obj(out))
            }
            other => Err(format!("expected a map, found {other}")),
        },
        Ty::Obj(fields) => match mp {
            Mp::Map(pairs) => {
                let mut out: BTreeMap<String, Val> = fields.keys().map(|k| (k.clone(), Val::Null)).collect();
                for (k, v) in pairs {
                    let k = mp_str(k).ok_or("object key is not a string")?;
                    if let Some(t) = fields.get(k) {
                        out.insert(k.to_owned(), decode(v, t)?);
                    }
                }
                Ok(Val::Obj(out))
            }
            other => Err(format!("expected an object, found {other}")),
        },
        Ty::Dyn => match mp {
            Mp::Array(pair) if pair.len() == 2 => {
                let ty_bytes: &[u8] = match &pair[0] {
                    Mp::Binary(b) => b,
                    Mp::String(s) => s.as_bytes(),
                    other => return Err(format!("expected a type, found {other}")),
                };
                let ty_json: Json = serde_json::from_slice(ty_bytes).map_err(|e| format!("bad type JSON: {e}"))?;
                let inner_ty = Ty::from_json(&ty_json)?;
                let inner = decode(&pair[1], &inner_ty)?;
                if inner.is_null() { Ok(Val::Null) } else { Ok(Val::Dyn(ty_json, Box::new(inner))) }
            }
            other => Err(format!("expected a dynamic value, found {other}")),
        },
    }
}

fn encode_num(n: f64) -> Mp {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Mp::from(n as i64)
    } else if n.is_finite() {
        Mp::from(format!("{n}"))
    } else {
        Mp::Nil
    }
}

pub fn encode(v: &Val, ty: &Ty) -> Mp {
    match v {
        Val::Unknown => return Mp::Ext(0, vec![]),
        Val::Null => return Mp::Nil,
        _ => {}
    }
    match ty {
        Ty::Dyn => {
            let (ty_json, inner) = match v {
                Val::Dyn(t, inner) => (t.clone(), inner.as_ref().clone()),
                other => (type_of(other), other.clone()),
            };
            let inner_ty = Ty::from_json(&ty_json).unwrap_or(Ty::Dyn);
            if inner_ty == Ty::Dyn {
                return Mp::Nil;
            }
            Mp::Array(vec![Mp::Binary(ty_json.to_string().into_bytes()), encode(&inner, &inner_ty)])
        }
        _ => {
            let v = match v {
                Val::Dyn(_, inner) => inner.as_ref(),
                other => other,
            };
            match (ty, v) {
                (Ty::Str, Val::Str(s)) => Mp::from(s.as_str()),
                (Ty::Str, Val::Num(n)) => Mp::from(format!("{n}")),
                (Ty::Str, Val::Bool(b)) => Mp::from(b.to_string()),
                (Ty::Num, Val::Num(n)) => encode_num(*n),
                (Ty::Bool, Val::Bool(b)) => Mp::Boolean(*b),
                (Ty::List(t) | Ty::Set(t), Val::List(items)) => Mp::Array(items.iter().map(|i| encode(i, t)).collect()),
                (Ty::Tuple(ts), Val::List(items)) => {
                    Mp::Array(items.iter().zip(ts.iter()).map(|(i, t)| encode(i, t)).collect())
                }
                (Ty::Map(t), Val::Obj(m)) => {
                    Mp::Map(m.iter().map(|(k, v)| (Mp::from(k.as_str()), encode(v, t))).collect())
                }
                (Ty::Obj(fields), Val::Obj(m)) => Mp::Map(
                    fields
                        .iter()
                        .map(|(k, t)| (Mp::from(k.as_str()), encode(m.get(k).unwrap_or(&Val::Null), t)))
                        .collect(),
                ),
                _ => Mp::Nil,
            }
        }
    }
}

// ---- JSON ---------------------------------------------------------------------------------

/// The cty type Terraform would give this value had it come from `jsondecode`.
pub fn type_of(v: &Val) -> Json {
    match v {
        Val::Unknown | Val::Null => Json::from("dynamic"),
        Val::Bool(_) => Json::from("bool"),
        Val::Num(_) => Json::from("number"),
        Val::Str(_) => Json::from("string"),
        Val::List(items) => Json::Array(vec!["tuple".into(), Json::Array(items.iter().map(type_of).collect())]),
        Val::Obj(m) => {
            Json::Array(vec!["object".into(), Json::Object(m.iter().map(|(k, v)| (k.clone(), type_of(v))).collect())])
        }
        Val::Dyn(t, _) => t.clone(),
    }
}

/// A JSON value as a Terraform value (objects stay objects, arrays become lists).
pub fn from_json(j: &Json) -> Val {
    match j {
        Json::Null => Val::Null,
        Json::Bool(b) => Val::Bool(*b),
        Json::Number(n) => n.as_f64().map_or(Val::Null, Val::Num),
        Json::String(s) => Val::Str(s.clone()),
        Json::Array(a) => Val::List(a.iter().map(from_json).collect()),
        Json::Object(m) => Val::Obj(m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
    }
}

/// A JSON value as the value of a `dynamic` attribute (its type inferred as `jsondecode` does).
pub fn dyn_from_json(j: &Json) -> Val {
    let v = from_json(j);
    if v.is_null() { Val::Null } else { Val::Dyn(type_of(&v), Box::new(v)) }
}

/// The JSON form of a value; unknown values become null.
pub fn to_json(v: &Val) -> Json {
    match v {
        Val::Unknown | Val::Null => Json::Null,
        Val::Bool(b) => Json::Bool(*b),
        Val::Num(n) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                Json::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number)
            }
        }
        Val::Str(s) => Json::String(s.clone()),
        Val::List(items) => Json::Array(items.iter().map(to_json).collect()),
        Val::Obj(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Val::Dyn(_, inner) => to_json(inner),
    }
}

/// Equal as data: numbers by value, object attributes that are null count as absent, and
/// the concrete type of a dynamic value (list or tuple, object or map) does not matter.
pub fn same_data(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_data(a, b)),
        (Json::Object(x), Json::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().all(|k| same_data(x.get(k).unwrap_or(&Json::Null), y.get(k).unwrap_or(&Json::Null)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: &Val, ty: &Ty) -> Val {
        decode_bytes(&encode_bytes(v, ty), ty).unwrap()
    }

    #[test]
    fn objects_lists_numbers_and_unknowns_round_trip() {
        let ty = Ty::obj(&[
            ("name", Ty::Str),
            ("size", Ty::Num),
            ("ratio", Ty::Num),
            ("tags", Ty::list(Ty::Str)),
            ("id", Ty::Str),
            ("on", Ty::Bool),
        ]);
        let mut m = BTreeMap::new();
        m.insert("name".to_owned(), Val::str("a"));
        m.insert("size".to_owned(), Val::Num(3.0));
        m.insert("ratio".to_owned(), Val::Num(3.79));
        m.insert("tags".to_owned(), Val::strings(["x", "y"]));
        m.insert("id".to_owned(), Val::Unknown);
        m.insert("on".to_owned(), Val::Null);
        let v = Val::Obj(m);
        assert_eq!(roundtrip(&v, &ty), v);
        // 3.79 goes out as the decimal string cty parses back exactly.
        let mp = encode(&Val::Num(3.79), &Ty::Num);
        assert_eq!(mp, Mp::from("3.79"));
        assert_eq!(encode(&Val::Num(900.0), &Ty::Num), Mp::from(900));
    }

    #[test]
    fn dynamic_values_carry_their_type() {
        let j = serde_json::json!({"bind": ["scheme"], "idling_timeout": 0.19, "remember": false});
        let v = dyn_from_json(&j);
        let Val::Dyn(t, _) = &v else { panic!("not dynamic: {v:?}") };
        assert_eq!(
            t,
            &serde_json::json!(["object", {"bind": ["tuple", ["string"]], "idling_timeout": "number", "remember": "bool"}])
        );
        let back = roundtrip(&v, &Ty::Dyn);
        assert_eq!(back, v);
        assert!(same_data(&to_json(&back), &j));
        assert_eq!(roundtrip(&Val::Null, &Ty::Dyn), Val::Null);
        assert_eq!(roundtrip(&Val::Unknown, &Ty::Dyn), Val::Unknown);
    }

    #[test]
    fn same_data_ignores_nulls_and_number_forms() {
        assert!(same_data(&serde_json::json!({"a": 1, "b": null}), &serde_json::json!({"a": 1.0})));
        assert!(!same_data(&serde_json::json!({"a": 1}), &serde_json::json!({"a": 2})));
        assert!(!same_data(&serde_json::json!(["a"]), &serde_json::json!(["a", "b"])));
    }
}
