//! Image references and the repositories a NodeMonitor may pick from.
//!
//! An image is `[registry/]path[:tag][@digest]`; its repository is
//! `registry/path` with Docker Hub's implicit parts written out (`nginx` is
//! `docker.io/library/nginx`), so `nginx` and `docker.io/library/nginx` are one
//! repository. An allowed entry is a repository (`registry.example.com/fgm`)
//! or, ending in `/*`, every repository below a prefix (`registry.example.com/team/*`).

use std::fmt;

/// Why an image or an allowed entry is refused; messages name the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("{what} {image:?} is not an image reference: {reason}")]
    Malformed {
        what: &'static str,
        image: String,
        reason: &'static str,
    },
    #[error(
        "spec.image {image:?} (repository {repository}) is not allowed: {allowed}; \
         the operator's --allowed-image-repositories decides which images a NodeMonitor may pick"
    )]
    NotAllowed {
        image: String,
        repository: String,
        allowed: String,
    },
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `registry/path`, Docker Hub spelled out.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

fn malformed(what: &'static str, image: &str, reason: &'static str) -> ImageError {
    ImageError::Malformed {
        what,
        image: image.to_string(),
        reason,
    }
}

/// `registry/path` with Docker Hub's implicit registry and `library/` written out.
fn full_repository(what: &'static str, name: &str, original: &str) -> Result<String, ImageError> {
    if name.is_empty() {
        return Err(malformed(what, original, "the repository name is empty"));
    }
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (name, None),
    };
    let is_registry =
        rest.is_some() && (first.contains('.') || first.contains(':') || first == "localhost");
    let (registry, path) = if is_registry {
        (first, rest.unwrap_or_default().to_string())
    } else if rest.is_none() {
        ("docker.io", format!("library/{name}"))
    } else {
        ("docker.io", name.to_string())
    };
    let registry = if registry == "index.docker.io" {
        "docker.io"
    } else {
        registry
    };
    let registry_ok = registry
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !registry_ok {
        return Err(malformed(
            what,
            original,
            "the registry has invalid characters",
        ));
    }
    for component in path.split('/') {
        let ok = !component.is_empty()
            && component.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
            && component
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if !ok {
            return Err(malformed(
                what,
                original,
                "a path component is empty or not lowercase letters, digits, `.`, `_`, `-`",
            ));
        }
    }
    Ok(format!("{registry}/{path}"))
}

impl ImageRef {
    /// Parses an image reference (`what` names it in errors).
    pub fn parse(what: &'static str, image: &str) -> Result<Self, ImageError> {
        if image.trim() != image || image.is_empty() || image.chars().any(char::is_whitespace) {
            return Err(malformed(what, image, "it is empty or contains whitespace"));
        }
        let (name_tag, digest) = match image.split_once('@') {
            Some((n, d)) => {
                let valid = d.split_once(':').is_some_and(|(algo, hex)| {
                    !algo.is_empty()
                        && algo.chars().all(|c| {
                            c.is_ascii_alphanumeric()
                                || c == '+'
                                || c == '.'
                                || c == '_'
                                || c == '-'
                        })
                        && hex.len() >= 32
                        && hex.chars().all(|c| c.is_ascii_hexdigit())
                });
                if !valid {
                    return Err(malformed(what, image, "the digest is not algorithm:hex"));
                }
                (n, Some(d.to_string()))
            }
            None => (image, None),
        };
        // A tag follows the last `:` after the last `/` (a `:` before it is a registry port).
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                let tag = &name_tag[at + 1..];
                let valid = !tag.is_empty()
                    && tag.len() <= 128
                    && tag
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                    && !tag.starts_with(['.', '-']);
                if !valid {
                    return Err(malformed(
                        what,
                        image,
                        "the tag is not [A-Za-z0-9_.-]{1,128}",
                    ));
                }
                (&name_tag[..at], Some(tag.to_string()))
            }
            None => (name_tag, None),
        };
        Ok(Self {
            repository: full_repository(what, name, image)?,
            tag,
            digest,
        })
    }
}

/// One entry of `--allowed-image-repositories`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedRepository {
    /// Exactly this repository.
    Exact(String),
    /// Every repository whose name starts with this prefix (ends in `/`).
    Below(String),
}

impl AllowedRepository {
    pub fn allows(&self, repository: &str) -> bool {
        match self {
            Self::Exact(r) => r == repository,
            Self::Below(prefix) => repository.starts_with(prefix.as_str()),
        }
    }
}

impl std::str::FromStr for AllowedRepository {
    type Err = ImageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "--allowed-image-repositories entry";
        let s = s.trim();
        if let Some(prefix) = s.strip_suffix("/*") {
            // A registry alone (`registry.example.com/*`): everything it serves.
            let is_registry = !prefix.contains('/')
                && (prefix.contains('.') || prefix.contains(':') || prefix == "localhost");
            if is_registry {
                if !prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
                {
                    return Err(malformed(WHAT, s, "the registry has invalid characters"));
                }
                return Ok(Self::Below(format!("{prefix}/")));
            }
            // A single name is a Docker Hub namespace (`team/*`: docker.io/team/...);
            // anything longer is written as a repository name and checked like one.
            let repo = if prefix.contains('/') {
                full_repository(WHAT, prefix, s)?
            } else {
                full_repository(WHAT, &format!("docker.io/{prefix}"), s)?
            };
            return Ok(Self::Below(format!("{repo}/")));
        }
        let parsed = ImageRef::parse(WHAT, s)?;
        if parsed.tag.is_some() || parsed.digest.is_some() {
            return Err(malformed(
                WHAT,
                s,
                "name a repository without tag or digest (or end it in /* for everything below)",
            ));
        }
        Ok(Self::Exact(parsed.repository))
    }
}

impl fmt::Display for AllowedRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(r) => f.write_str(r),
            Self::Below(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// The image the monitor pods run: the operator's default unless the spec
/// names one, which must be the default itself or from an allowed repository.
pub fn choose(
    spec_image: Option<&str>,
    default_image: &str,
    allowed: &[AllowedRepository],
) -> Result<String, ImageError> {
    let Some(image) = spec_image else {
        return Ok(default_image.to_string());
    };
    if image == default_image {
        return Ok(image.to_string());
    }
    let parsed = ImageRef::parse("spec.image", image)?;
    if allowed.iter().any(|a| a.allows(&parsed.repository)) {
        return Ok(image.to_string());
    }
    let allowed = if allowed.is_empty() {
        "this operator allows no image but its default".to_string()
    } else {
        format!(
            "allowed repositories are {}",
            allowed
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(ImageError::NotAllowed {
        image: image.to_string(),
        repository: parsed.repository,
        allowed,
    })
}

#[cfg(test)]
mod tests;
