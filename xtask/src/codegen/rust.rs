//! Turns the objects named in `spec` into Rust source: one struct per object, one enum per
//! enumerated field, everything else mapped to the closest Rust type.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

use super::spec::{Module, Type};

/// The Rust type of a property.
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    Named(String),
    Enum(String, Vec<String>),
    Str,
    DateTime,
    Int,
    Float,
    Bool,
    Map,
    Any,
    List(Box<Ty>),
}

impl Ty {
    fn rust(&self) -> String {
        match self {
            Self::Named(name) | Self::Enum(name, _) => name.clone(),
            Self::Str => "String".into(),
            Self::DateTime => "chrono::DateTime<chrono::Utc>".into(),
            Self::Int => "i64".into(),
            Self::Float => "f64".into(),
            Self::Bool => "bool".into(),
            Self::Map => "serde_json::Map<String, serde_json::Value>".into(),
            Self::Any => "serde_json::Value".into(),
            Self::List(item) => format!("Vec<{}>", item.rust()),
        }
    }

    fn enums(&self) -> Option<(&str, &[String])> {
        match self {
            Self::Enum(name, values) => Some((name, values)),
            Self::List(item) => item.enums(),
            _ => None,
        }
    }
}

/// Where each generated object lives, to resolve `$ref`s between them.
pub(crate) struct Names<'a> {
    by_object: HashMap<(&'a str, &'a str), (&'a str, String)>,
}

impl<'a> Names<'a> {
    pub(crate) fn new(modules: &'a [Module]) -> Self {
        let mut by_object = HashMap::new();
        for module in modules {
            for ty in module.types {
                let name = ty.reuse.map_or_else(|| ty.name.to_owned(), str::to_owned);
                by_object.insert((ty.schema, ty.def), (module.name, name));
            }
        }
        Self { by_object }
    }

    fn path(&self, from_module: &str, schema: &str, def: &str) -> Option<String> {
        let (module, name) = self.by_object.get(&(schema, def))?;
        Some(if *module == from_module || name.contains("::") {
            name.clone()
        } else {
            format!("super::{module}::{name}")
        })
    }
}

/// One schema file being read.
struct Source<'a> {
    name: &'a str,
    document: &'a Value,
    module: &'a str,
    names: &'a Names<'a>,
}

impl Source<'_> {
    fn definition(&self, def: &str) -> anyhow::Result<&Value> {
        if def.is_empty() {
            return Ok(self.document);
        }
        self.document
            .get("$defs")
            .and_then(|defs| defs.get(def))
            .ok_or_else(|| anyhow!("{}.json has no $defs/{def}", self.name))
    }

    /// The type of `node`, and whether it may be null or absent.
    fn resolve(&self, node: &Value, enum_name: &str) -> anyhow::Result<(Ty, bool)> {
        if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let def = reference
                .strip_prefix("#/$defs/")
                .ok_or_else(|| anyhow!("unsupported $ref {reference}"))?;
            if let Some(path) = self.names.path(self.module, self.name, def) {
                return Ok((Ty::Named(path), false));
            }
            let target = self.definition(def)?;
            if has_properties(target) {
                // An object stagewatch does not read: kept as raw JSON.
                return Ok((Ty::Any, false));
            }
            return self.resolve(target, enum_name);
        }
        if let Some(variants) = node.get("anyOf").and_then(Value::as_array) {
            let present: Vec<&Value> = variants.iter().filter(|v| !is_absent(v)).collect();
            let nullable = present.len() < variants.len();
            return match present.as_slice() {
                [only] => {
                    let (ty, inner_nullable) = self.resolve(only, enum_name)?;
                    Ok((ty, nullable || inner_nullable))
                }
                _ => Ok((Ty::Any, nullable)),
            };
        }
        if let Some(values) = node.get("enum").and_then(Value::as_array) {
            let values = values
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| anyhow!("{enum_name}: only string enums are supported"))?;
            return Ok((Ty::Enum(enum_name.to_owned(), values), false));
        }
        let ty = match node.get("type").and_then(Value::as_str) {
            Some("string") if node.get("format").and_then(Value::as_str) == Some("date-time") => {
                Ty::DateTime
            }
            Some("string") => Ty::Str,
            Some("integer") => Ty::Int,
            Some("number") => Ty::Float,
            Some("boolean") => Ty::Bool,
            Some("array") => {
                let items = node.get("items").unwrap_or(&Value::Null);
                Ty::List(Box::new(self.resolve(items, enum_name)?.0))
            }
            Some("object") if !has_properties(node) => Ty::Map,
            _ => Ty::Any,
        };
        Ok((ty, false))
    }
}

fn has_properties(node: &Value) -> bool {
    node.get("properties")
        .and_then(Value::as_object)
        .is_some_and(|properties| !properties.is_empty())
}

/// `{"type": "null"}` or Kombo's SDK's `Unset` marker: the value may be missing.
fn is_absent(node: &Value) -> bool {
    node.get("type").and_then(Value::as_str) == Some("null")
        || node.get("$ref").and_then(Value::as_str) == Some("#/$defs/Unset")
}

/// Renders one module's source (not yet formatted).
pub(crate) fn module(
    module: &Module,
    schemas: &BTreeMap<String, Value>,
    names: &Names<'_>,
) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(out, "{}", super::HEADER)?;
    writeln!(out, "//! {}", module.doc)?;
    let mut enums: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ty in module.types.iter().filter(|ty| ty.reuse.is_none()) {
        let document = schemas
            .get(ty.schema)
            .ok_or_else(|| anyhow!("no schema file {}.json", ty.schema))?;
        let source = Source {
            name: ty.schema,
            document,
            module: module.name,
            names,
        };
        render_struct(&mut out, &source, ty, &mut enums)
            .with_context(|| format!("{} in {}.json", ty.name, ty.schema))?;
    }
    for (name, values) in &enums {
        render_enum(&mut out, name, values)?;
    }
    Ok(out)
}

fn render_struct(
    out: &mut String,
    source: &Source<'_>,
    ty: &Type,
    enums: &mut BTreeMap<String, Vec<String>>,
) -> anyhow::Result<()> {
    let object = source.definition(ty.def)?;
    let properties = object
        .get("properties")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("not an object"))?;
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let title = object
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or(ty.def);
    writeln!(out)?;
    writeln!(out, "/// `{title}` in `{}.json`.", source.name)?;
    if let Some(description) = object.get("description").and_then(Value::as_str) {
        writeln!(
            out,
            "///\n/// {}",
            description.lines().next().unwrap_or_default()
        )?;
    }
    writeln!(
        out,
        "#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]"
    )?;
    writeln!(out, "pub struct {} {{", ty.name)?;
    for field in ty.fields {
        let (field, enum_name) = match field.split_once('=') {
            Some((field, name)) => (field, name.to_owned()),
            None => (*field, format!("{}{}", ty.name, pascal_case(field))),
        };
        let node = properties
            .get(field)
            .ok_or_else(|| anyhow!("no property `{field}`"))?;
        let (field_ty, nullable) = source.resolve(node, &enum_name)?;
        if let Some((name, values)) = field_ty.enums() {
            match enums.get(name) {
                Some(known) if known != values => {
                    bail!("enum {name} is generated twice with different values")
                }
                _ => enums.insert(name.to_owned(), values.to_vec()),
            };
        }
        let ident = if field == "type" { "r#type" } else { field };
        if nullable || !required.contains(&field) {
            // A required field that may be null is sent as `null`: Kombo refuses it absent.
            let skip = if required.contains(&field) {
                ""
            } else {
                ", skip_serializing_if = \"Option::is_none\""
            };
            writeln!(out, "    #[serde(default{skip})]")?;
            writeln!(out, "    pub {ident}: Option<{}>,", field_ty.rust())?;
        } else {
            if matches!(field_ty, Ty::List(_) | Ty::Map) {
                writeln!(out, "    #[serde(default)]")?;
            }
            writeln!(out, "    pub {ident}: {},", field_ty.rust())?;
        }
    }
    writeln!(out, "}}")?;
    Ok(())
}

fn render_enum(out: &mut String, name: &str, values: &[String]) -> anyhow::Result<()> {
    let variants: Vec<String> = values.iter().map(|value| pascal_case(value)).collect();
    if variants.iter().any(|variant| variant == "Other") {
        bail!("enum {name} has a value that would be named Other");
    }
    writeln!(out)?;
    writeln!(
        out,
        "/// A value Kombo may extend: one this version does not know is kept in `Other`."
    )?;
    writeln!(
        out,
        "#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]"
    )?;
    writeln!(out, "#[serde(from = \"String\", into = \"String\")]")?;
    writeln!(out, "pub enum {name} {{")?;
    for (variant, value) in variants.iter().zip(values) {
        writeln!(out, "    /// `{value}`\n    {variant},")?;
    }
    writeln!(
        out,
        "    /// A value this version does not know.\n    Other(String),"
    )?;
    writeln!(out, "}}\n")?;
    writeln!(out, "impl {name} {{")?;
    writeln!(out, "    /// The value as Kombo spells it.")?;
    writeln!(
        out,
        "    pub fn as_str(&self) -> &str {{\n        match self {{"
    )?;
    for (variant, value) in variants.iter().zip(values) {
        writeln!(out, "            Self::{variant} => \"{value}\",")?;
    }
    writeln!(
        out,
        "            Self::Other(value) => value,\n        }}\n    }}\n}}\n"
    )?;
    writeln!(out, "impl From<String> for {name} {{")?;
    writeln!(
        out,
        "    fn from(value: String) -> Self {{\n        match value.as_str() {{"
    )?;
    for (variant, value) in variants.iter().zip(values) {
        writeln!(out, "            \"{value}\" => Self::{variant},")?;
    }
    writeln!(
        out,
        "            _ => Self::Other(value),\n        }}\n    }}\n}}\n"
    )?;
    writeln!(out, "impl From<{name}> for String {{")?;
    writeln!(
        out,
        "    fn from(value: {name}) -> Self {{\n        match value {{"
    )?;
    writeln!(out, "            {name}::Other(value) => value,")?;
    writeln!(
        out,
        "            known => known.as_str().to_owned(),\n        }}\n    }}\n}}"
    )?;
    Ok(())
}

/// `PLATFORM.RATE_LIMIT_EXCEEDED` → `PlatformRateLimitExceeded`.
fn pascal_case(value: &str) -> String {
    value
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::pascal_case;

    #[test]
    fn enum_values_become_pascal_case_variants() {
        assert_eq!(
            pascal_case("PLATFORM.RATE_LIMIT_EXCEEDED"),
            "PlatformRateLimitExceeded"
        );
        assert_eq!(pascal_case("ats_applications"), "AtsApplications");
        assert_eq!(pascal_case("data-changed"), "DataChanged");
    }
}
