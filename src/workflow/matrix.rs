//! `strategy.matrix` expansion, as GitHub documents it ("Running variations of jobs in
//! a workflow"):
//!
//! 1. Every key other than `include`/`exclude` is an axis: a non-empty list of values.
//!    The combinations are the cartesian product of the axes, the first axis varying
//!    slowest (its first value makes the first jobs).
//! 2. An `exclude` entry removes every combination it matches partially: each of its
//!    keys must be an axis and equal the combination's value.
//! 3. `include` entries are processed after `exclude`, in order. An entry is added to
//!    every original combination where none of its key/value pairs overwrites an
//!    original (axis) value; values added by earlier entries may be overwritten. An
//!    entry that fits no original combination becomes a new combination of its own,
//!    which later entries do not extend.
//! 4. At most 256 combinations.
//!
//! Keys are case-insensitive (`OS` and `os` are the same variable); a combination keeps
//! the spelling that introduced the key. Values compare exactly (JSON equality).

use indexmap::IndexMap;

use crate::workflow::expr::Value;

/// The most jobs one matrix may produce on GitHub.
pub const MAX_COMBINATIONS: usize = 256;

/// One job's `matrix` context.
pub type Combination = IndexMap<String, Value>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatrixError {
    #[error("the matrix must be a mapping")]
    NotAMapping,
    #[error("matrix vector '{0}' must be a list of values")]
    AxisNotAList(String),
    #[error("matrix vector '{0}' does not contain any values")]
    EmptyAxis(String),
    #[error("matrix '{0}' must be a list of mappings")]
    NotAListOfMappings(&'static str),
    #[error("matrix exclude key '{0}' does not match any key within the matrix")]
    UnknownExcludeKey(String),
    /// GitHub's wording, after "Strategy for job '…' ".
    #[error("produced {0} configurations which exceeds the maximum of {MAX_COMBINATIONS} configurations")]
    TooManyCombinations(u128),
}

/// Expands a matrix (already evaluated to a value) into its combinations, in GitHub's
/// order. A matrix with no axes and no `include` entries has no combinations.
pub fn expand(matrix: &Value) -> Result<Vec<Combination>, MatrixError> {
    let Value::Object(entries) = matrix else {
        return Err(MatrixError::NotAMapping);
    };
    let mut axes: Vec<(&str, &[Value])> = Vec::new();
    let mut include: &[Value] = &[];
    let mut exclude: &[Value] = &[];
    for (key, value) in entries {
        if key.eq_ignore_ascii_case("include") {
            include = list_of_mappings(value, "include")?;
        } else if key.eq_ignore_ascii_case("exclude") {
            exclude = list_of_mappings(value, "exclude")?;
        } else {
            let Value::Array(values) = value else {
                return Err(MatrixError::AxisNotAList(key.clone()));
            };
            if values.is_empty() {
                return Err(MatrixError::EmptyAxis(key.clone()));
            }
            axes.push((key, values));
        }
    }

    // The product before `exclude` may be astronomically large; GitHub would refuse
    // it anyway, so refuse before enumerating (exclude cannot bring it back under 256
    // without listing at least that many entries).
    let product = axes.iter().fold(1u128, |acc, (_, v)| acc.saturating_mul(v.len() as u128));
    let removable = exclude.len().saturating_mul(product_of_others_bound(&axes)) as u128;
    if product > (MAX_COMBINATIONS as u128).saturating_add(removable) {
        return Err(MatrixError::TooManyCombinations(product));
    }

    for entry in exclude {
        for key in object_keys(entry) {
            if !axes.iter().any(|(axis, _)| axis.eq_ignore_ascii_case(key)) {
                return Err(MatrixError::UnknownExcludeKey(key.to_string()));
            }
        }
    }

    let mut originals: Vec<Combination> = Vec::new();
    if !axes.is_empty() {
        let mut index = vec![0usize; axes.len()];
        'product: loop {
            let combination: Combination =
                axes.iter().zip(&index).map(|((k, values), i)| (k.to_string(), values[*i].clone())).collect();
            if !exclude.iter().any(|entry| matches_partially(&combination, entry)) {
                originals.push(combination);
            }
            // Odometer: the last axis varies fastest.
            for position in (0..axes.len()).rev() {
                index[position] += 1;
                if index[position] < axes[position].1.len() {
                    continue 'product;
                }
                index[position] = 0;
            }
            break;
        }
    }

    let original_count = originals.len();
    let mut combinations = originals;
    for entry in include {
        let Value::Object(pairs) = entry else { unreachable!("checked by list_of_mappings") };
        let mut added_to_any = false;
        for combination in combinations.iter_mut().take(original_count) {
            let fits = pairs.iter().all(|(key, value)| match axis_key(&axes, key) {
                Some(axis) => combination.get(axis) == Some(value),
                None => true,
            });
            if fits {
                for (key, value) in pairs {
                    set_case_insensitive(combination, key, value.clone());
                }
                added_to_any = true;
            }
        }
        if !added_to_any {
            combinations.push(pairs.clone());
        }
    }

    if combinations.len() > MAX_COMBINATIONS {
        return Err(MatrixError::TooManyCombinations(combinations.len() as u128));
    }
    Ok(combinations)
}

/// An upper bound on how many combinations one exclude entry can remove: the product
/// of all axes but the smallest (an entry names at least one axis value).
fn product_of_others_bound(axes: &[(&str, &[Value])]) -> usize {
    let sizes: Vec<usize> = axes.iter().map(|(_, v)| v.len()).collect();
    let Some(smallest) = sizes.iter().copied().min() else { return 0 };
    let product = sizes.iter().fold(1usize, |acc, n| acc.saturating_mul(*n));
    product / smallest.max(1)
}

fn list_of_mappings<'a>(value: &'a Value, what: &'static str) -> Result<&'a [Value], MatrixError> {
    match value {
        Value::Array(items) if items.iter().all(|i| matches!(i, Value::Object(_))) => Ok(items),
        _ => Err(MatrixError::NotAListOfMappings(what)),
    }
}

fn object_keys(value: &Value) -> impl Iterator<Item = &str> {
    let map = match value {
        Value::Object(map) => Some(map),
        _ => None,
    };
    map.into_iter().flat_map(|m| m.keys().map(String::as_str))
}

/// The axis a key names, in the axis's own spelling.
fn axis_key<'a>(axes: &[(&'a str, &[Value])], key: &str) -> Option<&'a str> {
    axes.iter().map(|(axis, _)| *axis).find(|axis| axis.eq_ignore_ascii_case(key))
}

fn matches_partially(combination: &Combination, entry: &Value) -> bool {
    let Value::Object(pairs) = entry else { return false };
    pairs.iter().all(|(key, value)| get_case_insensitive(combination, key) == Some(value))
}

fn get_case_insensitive<'a>(combination: &'a Combination, key: &str) -> Option<&'a Value> {
    combination.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

fn set_case_insensitive(combination: &mut Combination, key: &str, value: Value) {
    match combination.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
        Some((_, slot)) => *slot = value,
        None => {
            combination.insert(key.to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(json: &str) -> Value {
        Value::from_json(&serde_json::from_str(json).expect("test JSON"))
    }

    fn expand_json(json: &str) -> Result<Vec<serde_json::Value>, MatrixError> {
        Ok(expand(&value(json))?.into_iter().map(|c| Value::Object(c).to_json()).collect())
    }

    #[test]
    fn errors() {
        assert_eq!(expand_json("[1]"), Err(MatrixError::NotAMapping));
        assert_eq!(expand_json(r#"{"os": "linux"}"#), Err(MatrixError::AxisNotAList("os".into())));
        assert_eq!(expand_json(r#"{"os": []}"#), Err(MatrixError::EmptyAxis("os".into())));
        assert_eq!(expand_json(r#"{"include": {"a": 1}}"#), Err(MatrixError::NotAListOfMappings("include")));
        assert_eq!(expand_json(r#"{"exclude": [1]}"#), Err(MatrixError::NotAListOfMappings("exclude")));
        assert_eq!(
            expand_json(r#"{"os": [1], "exclude": [{"arch": 1}]}"#),
            Err(MatrixError::UnknownExcludeKey("arch".into()))
        );
    }

    #[test]
    fn empty_matrix_has_no_combinations() {
        assert_eq!(expand_json("{}"), Ok(vec![]));
    }

    #[test]
    fn exclude_then_include_adds_back() {
        let got =
            expand_json(r#"{"os": ["a", "b"], "exclude": [{"os": "a"}], "include": [{"os": "a", "x": 1}]}"#)
                .unwrap();
        assert_eq!(got, vec![serde_json::json!({"os": "b"}), serde_json::json!({"os": "a", "x": 1})]);
    }

    #[test]
    fn object_values_compare_whole() {
        let got = expand_json(
            r#"{"os": ["a", "b"], "node": [{"v": 14}, {"v": 20, "env": "x"}],
                "exclude": [{"os": "a", "node": {"v": 14}}, {"node": {"v": 20}}],
                "include": [{"node": {"v": 14}, "extra": 1}]}"#,
        )
        .unwrap();
        // Values compare whole (the docs only speak of partial matches over keys):
        // `{"v": 20}` is not `{"v": 20, "env": "x"}`, so that exclude removes nothing.
        let expected = [
            r#"{"os":"a","node":{"v":20,"env":"x"}}"#,
            r#"{"os":"b","node":{"v":14},"extra":1}"#,
            r#"{"os":"b","node":{"v":20,"env":"x"}}"#,
        ];
        assert_eq!(got.iter().map(|c| c.to_string()).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn limit_is_256() {
        let axis: Vec<u32> = (0..16).collect();
        let sixteen = serde_json::json!(axis).to_string();
        let ok = format!(r#"{{"a": {sixteen}, "b": {sixteen}}}"#);
        assert_eq!(expand_json(&ok).unwrap().len(), 256);
        let over = format!(r#"{{"a": {sixteen}, "b": {sixteen}, "include": [{{"a": 99}}]}}"#);
        assert_eq!(expand_json(&over), Err(MatrixError::TooManyCombinations(257)));
        let huge = format!(r#"{{"a": {sixteen}, "b": {sixteen}, "c": {sixteen}, "d": {sixteen}}}"#);
        assert_eq!(expand_json(&huge), Err(MatrixError::TooManyCombinations(65536)));
        // Excluding brings an oversized product back under the limit.
        let excluded = format!(r#"{{"a": {sixteen}, "b": [1, 2], "exclude": [{{"b": 2}}]}}"#);
        assert_eq!(expand_json(&excluded).unwrap().len(), 16);
    }
}
