//! The values expressions compute with: JSON's types, with numbers as f64 as in
//! GitHub's evaluator. Objects keep insertion order (it shows in `toJSON`) and are
//! looked up case-insensitively, as GitHub's dictionaries are.

use indexmap::IndexMap;

use super::js;

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Value>),
    Object(IndexMap<String, Value>),
}

impl Value {
    /// Looks a key up as GitHub does: case-insensitively.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(map) => {
                map.get(key).or_else(|| map.iter().find(|(k, _)| js::lower_eq(k, key)).map(|(_, v)| v))
            }
            _ => None,
        }
    }

    /// Truthiness as in `if:` and `!`: false for null, false, 0, NaN and the empty
    /// string; true for everything else, including empty arrays and objects.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => !(*n == 0.0 || n.is_nan()),
            Value::String(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) => true,
        }
    }

    /// The string GitHub's evaluator makes of a value (in `format`, `join`, and
    /// `${{ }}` inside text): null is empty, numbers have at most 15 decimals, an
    /// array is `Array` and an object `Object`.
    pub fn coerce_to_string(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => js::number_coerce_string(*n),
            Value::String(s) => s.clone(),
            Value::Array(_) => "Array".to_string(),
            Value::Object(_) => "Object".to_string(),
        }
    }

    /// Converts JSON as GitHub's evaluator takes its data in: object keys in
    /// JavaScript's order (array-index keys first), keys that differ only in case
    /// deduplicated (the first wins), `constructor`/`__proto__` dropped.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => Value::Array(items.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(map) => Value::Object(js::js_object(
                map.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect(),
            )),
        }
    }

    /// Parses JSON text exactly as `JSON.parse` + GitHub's reviver do (numbers beyond
    /// f64 become infinities, duplicate keys keep the last value).
    pub fn parse_json(text: &str) -> Option<Value> {
        js::parse_json(text).ok()
    }

    /// Compact JSON as JavaScript's `JSON.stringify` writes it (NaN and the
    /// infinities as `null`, numbers in JavaScript's notation).
    pub fn to_json_string(&self) -> String {
        js::stringify(self, "")
    }

    /// Indented JSON, as `toJSON()` writes it (two spaces).
    pub fn to_json_pretty(&self) -> String {
        js::stringify(self, "  ")
    }

    /// Plain JSON. Integral numbers become JSON integers; NaN and the infinities,
    /// which JSON cannot hold, become null.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(*n),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => serde_json::Value::Array(items.iter().map(Value::to_json).collect()),
            Value::Object(map) => {
                serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

fn number_to_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        // -0 prints as 0, as JSON.stringify does.
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

impl From<&serde_json::Value> for Value {
    fn from(json: &serde_json::Value) -> Self {
        Value::from_json(json)
    }
}
