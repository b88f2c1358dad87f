//! The parsed form of a Kafka message definition.

use serde_json::Value;

/// An inclusive version range; empty when `lo > hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub lo: i16,
    pub hi: i16,
}

impl Range {
    pub const NONE: Range = Range { lo: 1, hi: 0 };

    pub fn parse(s: &str) -> Result<Range, String> {
        let s = s.trim();
        let num = |t: &str| {
            t.trim()
                .parse::<i16>()
                .map_err(|_| format!("bad version range {s:?}"))
        };
        if s == "none" {
            Ok(Range::NONE)
        } else if let Some(a) = s.strip_suffix('+') {
            Ok(Range {
                lo: num(a)?,
                hi: i16::MAX,
            })
        } else if let Some((a, b)) = s.split_once('-') {
            Ok(Range {
                lo: num(a)?,
                hi: num(b)?,
            })
        } else {
            let v = num(s)?;
            Ok(Range { lo: v, hi: v })
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lo > self.hi
    }

    pub fn intersect(&self, o: &Range) -> Range {
        Range {
            lo: self.lo.max(o.lo),
            hi: self.hi.min(o.hi),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    /// A primitive, by its Kafka name (`int32`, `string`, `records`, ...).
    Prim(String),
    Struct(String),
    Array(Box<Ty>),
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub ty: Ty,
    pub versions: Range,
    pub nullable: Range,
    /// The tag and the versions in which the field is sent as a tagged field.
    pub tag: Option<(u32, Range)>,
    /// A per-field override of the message's flexible versions.
    pub flexible: Option<Range>,
    pub default: Option<String>,
    pub about: String,
}

#[derive(Debug, Clone)]
pub struct StructDef {
    pub name: String,
    pub about: String,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub name: String,
    /// `request`, `response`, `header` or `data`.
    pub kind: String,
    pub api_key: Option<i16>,
    pub valid: Range,
    pub flexible: Range,
    pub latest_unstable: bool,
    /// The top-level struct first, then nested and common structs in definition order.
    pub structs: Vec<StructDef>,
}

/// Removes `//` comments that are outside JSON strings.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '/' && chars.peek() == Some(&'/') {
            for n in chars.by_ref() {
                if n == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            if c == '"' {
                in_str = true;
            }
            out.push(c);
        }
    }
    out
}

fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn get_str(o: &Value, key: &str) -> Option<String> {
    o.get(key).and_then(str_of)
}

fn parse_ty(s: &str) -> Ty {
    if let Some(inner) = s.strip_prefix("[]") {
        Ty::Array(Box::new(parse_ty(inner)))
    } else if s.starts_with(|c: char| c.is_ascii_uppercase()) {
        Ty::Struct(s.to_string())
    } else {
        Ty::Prim(s.to_string())
    }
}

const PRIMS: &[&str] = &[
    "bool", "int8", "int16", "int32", "int64", "uint16", "uint32", "float64", "uuid", "string",
    "bytes", "records",
];

fn parse_fields(
    arr: &Value,
    structs: &mut Vec<StructDef>,
    ctx: &str,
) -> Result<Vec<Field>, String> {
    let arr = arr
        .as_array()
        .ok_or_else(|| format!("{ctx}: fields is not an array"))?;
    let mut out = Vec::new();
    for f in arr {
        let name = get_str(f, "name").ok_or_else(|| format!("{ctx}: field without a name"))?;
        let ty_s = get_str(f, "type").ok_or_else(|| format!("{ctx}.{name}: no type"))?;
        let ty = parse_ty(&ty_s);
        let mut base = &ty;
        while let Ty::Array(i) = base {
            base = i;
        }
        match base {
            Ty::Prim(p) if !PRIMS.contains(&p.as_str()) => {
                return Err(format!("{ctx}.{name}: unknown type {p}"))
            }
            Ty::Struct(sname) => {
                if let Some(sub) = f.get("fields") {
                    let mut def = StructDef {
                        name: sname.clone(),
                        about: get_str(f, "about").unwrap_or_default(),
                        fields: Vec::new(),
                    };
                    let idx = structs.len();
                    structs.push(def.clone());
                    def.fields = parse_fields(sub, structs, sname)?;
                    structs[idx] = def;
                }
            }
            _ => {}
        }
        let versions = Range::parse(
            &get_str(f, "versions").ok_or_else(|| format!("{ctx}.{name}: no versions"))?,
        )?;
        let nullable = match get_str(f, "nullableVersions") {
            Some(s) => Range::parse(&s)?,
            None => Range::NONE,
        };
        let tag = match get_str(f, "tag") {
            Some(t) => {
                let t: u32 = t
                    .trim()
                    .parse()
                    .map_err(|_| format!("{ctx}.{name}: bad tag {t:?}"))?;
                let tv = match get_str(f, "taggedVersions") {
                    Some(s) => Range::parse(&s)?,
                    None => versions,
                };
                Some((t, tv.intersect(&versions)))
            }
            None => None,
        };
        let flexible = match get_str(f, "flexibleVersions") {
            Some(s) => Some(Range::parse(&s)?),
            None => None,
        };
        out.push(Field {
            name,
            ty,
            versions,
            nullable,
            tag,
            flexible,
            default: get_str(f, "default"),
            about: get_str(f, "about").unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Parses one definition file (comments allowed).
pub fn parse_message(text: &str) -> Result<Message, String> {
    let v: Value = serde_json::from_str(&strip_comments(text)).map_err(|e| e.to_string())?;
    let name = get_str(&v, "name").ok_or("no name")?;
    let kind = get_str(&v, "type").ok_or("no type")?;
    let api_key = match get_str(&v, "apiKey") {
        Some(k) => Some(k.parse::<i16>().map_err(|_| "bad apiKey")?),
        None => None,
    };
    let valid = Range::parse(&get_str(&v, "validVersions").ok_or("no validVersions")?)?;
    let flexible = match get_str(&v, "flexibleVersions") {
        Some(s) => Range::parse(&s)?,
        None => Range::NONE,
    };
    let latest_unstable = get_str(&v, "latestVersionUnstable").as_deref() == Some("true");
    let mut structs = vec![StructDef {
        name: name.clone(),
        about: get_str(&v, "about").unwrap_or_default(),
        fields: Vec::new(),
    }];
    let fields = parse_fields(v.get("fields").ok_or("no fields")?, &mut structs, &name)?;
    structs[0].fields = fields;
    if let Some(common) = v.get("commonStructs").and_then(Value::as_array) {
        for c in common {
            let cname = get_str(c, "name").ok_or("common struct without a name")?;
            let idx = structs.len();
            structs.push(StructDef {
                name: cname.clone(),
                about: get_str(c, "about").unwrap_or_default(),
                fields: Vec::new(),
            });
            let f = parse_fields(c.get("fields").ok_or("no fields")?, &mut structs, &cname)?;
            structs[idx].fields = f;
        }
    }
    // A struct may be defined once and referenced again by name; keep the first definition.
    let mut seen = std::collections::HashSet::new();
    structs.retain(|s| seen.insert(s.name.clone()));
    Ok(Message {
        name,
        kind,
        api_key,
        valid,
        flexible,
        latest_unstable,
        structs,
    })
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv",
    "try", "typeof", "unsized", "virtual", "yield", "gen",
];

/// `CamelCase` (with acronyms) to `snake_case`.
pub fn snake(name: &str) -> String {
    let c: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for i in 0..c.len() {
        let ch = c[i];
        if ch.is_ascii_uppercase() && i > 0 {
            let prev = c[i - 1];
            let next_lower = c.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

/// The Rust identifier for a field.
pub fn field_ident(name: &str) -> String {
    let s = snake(name);
    if KEYWORDS.contains(&s.as_str()) {
        if s == "self" || s == "super" || s == "crate" {
            format!("{s}_")
        } else {
            format!("r#{s}")
        }
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_stripped_outside_strings_only() {
        let t = "// head\n{ \"a\": \"http://x\" // tail\n}";
        let v: Value = serde_json::from_str(&strip_comments(t)).unwrap();
        assert_eq!(v["a"], "http://x");
    }

    #[test]
    fn string_and_number_tags_parse_alike() {
        for tag in ["\"3\"", "3"] {
            let t = format!(
                r#"{{ "type": "data", "name": "X", "validVersions": "0-1", "flexibleVersions": "1+",
                "fields": [ {{ "name": "A", "type": "int32", "versions": "1+", "tag": {tag},
                "taggedVersions": "1+", "default": "0x10" }} ] }}"#
            );
            let m = parse_message(&t).unwrap();
            let f = &m.structs[0].fields[0];
            assert_eq!(
                f.tag,
                Some((
                    3,
                    Range {
                        lo: 1,
                        hi: i16::MAX
                    }
                ))
            );
            assert_eq!(f.default.as_deref(), Some("0x10"));
        }
    }

    #[test]
    fn names_are_rust_style() {
        assert_eq!(snake("ClientId"), "client_id");
        assert_eq!(snake("TopicID"), "topic_id");
        assert_eq!(snake("ISRNodes"), "isr_nodes");
        assert_eq!(snake("MetadataRequest"), "metadata_request");
        assert_eq!(field_ident("Type"), "r#type");
    }

    #[test]
    fn ranges() {
        assert_eq!(
            Range::parse("3+").unwrap(),
            Range {
                lo: 3,
                hi: i16::MAX
            }
        );
        assert_eq!(Range::parse("0-2").unwrap(), Range { lo: 0, hi: 2 });
        assert!(Range::parse("none").unwrap().is_empty());
        assert_eq!(Range::parse("5").unwrap(), Range { lo: 5, hi: 5 });
    }
}
