//! Schemas, declared once and turned into both tf-provider's [`Schema`] and the [`Ty`] that
//! guides the MessagePack codec.
//!
//! Nested objects are plain `object` types, lists of them, or nested blocks. tf-provider
//! 0.2.2's nested *attribute* types are not used: it sends both `type` and `nested_type`,
//! which Terraform refuses. Objects whose attributes are all optional (the session plugin's
//! `config`, `ordering`, `partials`) are `dynamic` attributes checked by the resource.

use std::collections::{BTreeMap, HashMap};

use tf_provider::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, Description, NestedBlock, Schema, StringKind,
};

use crate::value::Ty;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Required,
    Optional,
    Computed,
    /// Optional; when not set, the server's value is kept.
    OptionalComputed,
}

#[derive(Debug, Clone)]
pub struct AttrSpec {
    pub name: &'static str,
    pub ty: Ty,
    pub mode: Mode,
    pub sensitive: bool,
    pub desc: &'static str,
}

impl AttrSpec {
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    /// An argument the practitioner may write (not computed-only).
    pub fn is_argument(&self) -> bool {
        self.mode != Mode::Computed
    }
    pub fn is_computed(&self) -> bool {
        matches!(self.mode, Mode::Computed | Mode::OptionalComputed)
    }
}

fn attr(name: &'static str, ty: Ty, mode: Mode, desc: &'static str) -> AttrSpec {
    AttrSpec { name, ty, mode, sensitive: false, desc }
}
pub fn required(name: &'static str, ty: Ty, desc: &'static str) -> AttrSpec {
    attr(name, ty, Mode::Required, desc)
}
pub fn optional(name: &'static str, ty: Ty, desc: &'static str) -> AttrSpec {
    attr(name, ty, Mode::Optional, desc)
}
pub fn computed(name: &'static str, ty: Ty, desc: &'static str) -> AttrSpec {
    attr(name, ty, Mode::Computed, desc)
}
pub fn optional_computed(name: &'static str, ty: Ty, desc: &'static str) -> AttrSpec {
    attr(name, ty, Mode::OptionalComputed, desc)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// Exactly one block.
    Single,
    /// Any number of blocks.
    List,
}

#[derive(Debug, Clone)]
pub struct BlockSpec {
    pub desc: &'static str,
    pub attrs: Vec<AttrSpec>,
    pub blocks: Vec<(&'static str, Nesting, BlockSpec)>,
}

impl BlockSpec {
    pub fn new(desc: &'static str, attrs: Vec<AttrSpec>) -> Self {
        Self { desc, attrs, blocks: vec![] }
    }
    pub fn with_block(mut self, name: &'static str, nesting: Nesting, block: BlockSpec) -> Self {
        self.blocks.push((name, nesting, block));
        self
    }

    pub fn attr(&self, name: &str) -> Option<&AttrSpec> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// Names of everything the practitioner can write: arguments and blocks.
    pub fn argument_names(&self) -> Vec<&'static str> {
        self.attrs.iter().filter(|a| a.is_argument()).map(|a| a.name).chain(self.blocks.iter().map(|b| b.0)).collect()
    }

    /// The object type of this block's values.
    pub fn ty(&self) -> Ty {
        let mut fields: BTreeMap<String, Ty> = self.attrs.iter().map(|a| (a.name.to_owned(), a.ty.clone())).collect();
        for (name, nesting, block) in &self.blocks {
            let t = match nesting {
                Nesting::Single => block.ty(),
                Nesting::List => Ty::list(block.ty()),
            };
            fields.insert((*name).to_owned(), t);
        }
        Ty::Obj(fields)
    }

    fn to_block(&self) -> Block {
        Block {
            version: 1,
            attributes: self
                .attrs
                .iter()
                .map(|a| {
                    let constraint = match a.mode {
                        Mode::Required => AttributeConstraint::Required,
                        Mode::Optional => AttributeConstraint::Optional,
                        Mode::Computed => AttributeConstraint::Computed,
                        Mode::OptionalComputed => AttributeConstraint::OptionalComputed,
                    };
                    let at = Attribute {
                        attr_type: attribute_type(&a.ty),
                        description: Description { kind: StringKind::Markdown, content: a.desc.to_owned() },
                        constraint,
                        sensitive: a.sensitive,
                        deprecated: false,
                    };
                    (a.name.to_owned(), at)
                })
                .collect(),
            blocks: self
                .blocks
                .iter()
                .map(|(name, nesting, block)| {
                    let b = block.to_block();
                    let nb = match nesting {
                        Nesting::Single => NestedBlock::Single(b),
                        Nesting::List => NestedBlock::List(b),
                    };
                    ((*name).to_owned(), nb)
                })
                .collect(),
            description: Description { kind: StringKind::Markdown, content: self.desc.to_owned() },
            deprecated: false,
        }
    }

    pub fn to_schema(&self) -> Schema {
        Schema { version: 1, block: self.to_block() }
    }
}

fn attribute_type(t: &Ty) -> AttributeType {
    match t {
        Ty::Str => AttributeType::String,
        Ty::Num => AttributeType::Number,
        Ty::Bool => AttributeType::Bool,
        Ty::List(t) => AttributeType::List(Box::new(attribute_type(t))),
        Ty::Set(t) => AttributeType::Set(Box::new(attribute_type(t))),
        Ty::Map(t) => AttributeType::Map(Box::new(attribute_type(t))),
        Ty::Obj(f) => {
            AttributeType::Object(f.iter().map(|(k, t)| (k.clone(), attribute_type(t))).collect::<HashMap<_, _>>())
        }
        Ty::Tuple(ts) => AttributeType::Tuple(ts.iter().map(attribute_type).collect()),
        Ty::Dyn => AttributeType::Any,
    }
}
