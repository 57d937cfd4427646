//! Conversion between the served versions (the operator's webhook answers the
//! apiserver's ConversionReviews with this).
//!
//! The versions differ only by field renames ([`RENAMES`]), so an object is
//! converted by moving each renamed value to its other name: everything else
//! (metadata, status, fields this code does not know) passes through as it is,
//! which is what makes a round trip lossless. The apiserver accepts changes to
//! nothing but `apiVersion` and the renamed fields.

use serde_json::{Map, Value};

use super::{GROUP, VERSIONS};

/// Fields renamed in `v1beta1`: (path in `v1alpha1`, path in `v1beta1`).
pub const RENAMES: [(&[&str], &[&str]); 3] = [
    (
        &["spec", "retention", "maxBytes"],
        &["spec", "retention", "maxSize"],
    ),
    (
        &["spec", "metrics", "enabled"],
        &["spec", "metrics", "declarePort"],
    ),
    (&["spec", "enrichment"], &["spec", "podMetadata"]),
];

/// Why an object could not be converted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConversionError {
    #[error("object has no apiVersion")]
    NoApiVersion,
    #[error("cannot convert {from} to {to}: {GROUP} serves {}", VERSIONS.map(|v| format!("{GROUP}/{v}")).join(" and "))]
    UnknownVersion { from: String, to: String },
    #[error(
        "object has both {old} and {new} ({old} is the {from} name of {new}): refusing to drop either"
    )]
    BothNames {
        old: String,
        new: String,
        from: String,
    },
}

fn version_of(api_version: &str) -> Option<&'static str> {
    let (group, version) = api_version.split_once('/')?;
    (group == GROUP)
        .then(|| VERSIONS.into_iter().find(|v| *v == version))
        .flatten()
}

/// Converts one object to `desired_api_version` (`fgm.dev/v1alpha1` or `fgm.dev/v1beta1`).
pub fn convert(mut object: Value, desired_api_version: &str) -> Result<Value, ConversionError> {
    let current = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or(ConversionError::NoApiVersion)?
        .to_string();
    let unknown = || ConversionError::UnknownVersion {
        from: current.clone(),
        to: desired_api_version.to_string(),
    };
    let from = version_of(&current).ok_or_else(unknown)?;
    let to = version_of(desired_api_version).ok_or_else(unknown)?;
    if from == to {
        return Ok(object);
    }
    let forward = VERSIONS.iter().position(|v| *v == from) < VERSIONS.iter().position(|v| *v == to);
    for (alpha, beta) in RENAMES {
        let (old, new) = if forward {
            (alpha, beta)
        } else {
            (beta, alpha)
        };
        rename(&mut object, old, new, from)?;
    }
    object["apiVersion"] = Value::String(desired_api_version.to_string());
    Ok(object)
}

/// Moves the value at `old` to `new` (creating parents as needed); nothing when absent.
fn rename(
    object: &mut Value,
    old: &[&str],
    new: &[&str],
    from: &str,
) -> Result<(), ConversionError> {
    let Some((old_leaf, old_parent)) = old.split_last() else {
        return Ok(());
    };
    let Some(parent) = lookup(object, old_parent) else {
        return Ok(());
    };
    if !parent.contains_key(*old_leaf) {
        return Ok(());
    }
    if let Some((new_leaf, new_parent)) = new.split_last()
        && lookup(object, new_parent).is_some_and(|p| p.contains_key(*new_leaf))
    {
        return Err(ConversionError::BothNames {
            old: old.join("."),
            new: new.join("."),
            from: from.to_string(),
        });
    }
    let value = lookup(object, old_parent)
        .and_then(|p| p.remove(*old_leaf))
        .unwrap_or(Value::Null);
    let Some((new_leaf, new_parent)) = new.split_last() else {
        return Ok(());
    };
    let mut at = object;
    for key in new_parent {
        if !at.get(*key).is_some_and(Value::is_object) {
            at[*key] = Value::Object(Map::new());
        }
        at = &mut at[*key];
    }
    at[*new_leaf] = value;
    Ok(())
}

fn lookup<'a>(object: &'a mut Value, path: &[&str]) -> Option<&'a mut Map<String, Value>> {
    let mut at = object;
    for key in path {
        at = at.get_mut(*key)?;
    }
    at.as_object_mut()
}

#[cfg(test)]
mod tests;
