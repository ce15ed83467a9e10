//! Channel names, and the path `shm_open` is given for them.

use crate::Error;

/// The longest name accepted, not counting a leading `/`.
pub(crate) const MAX_NAME: usize = 200;

/// Checks `name` and returns the `shm_open` path for it (`/name`).
pub(crate) fn shm_path(name: &str) -> Result<String, Error> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let invalid = |reason| {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if bare.is_empty() {
        return invalid("it is empty");
    }
    if bare.len() > MAX_NAME {
        return invalid("it is longer than 200 characters");
    }
    if let Some(c) = bare
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return if c == '/' {
            invalid("it has a '/' after the first character")
        } else {
            invalid("it has a character other than A-Z, a-z, 0-9, '.', '_' and '-'")
        };
    }
    if bare == "." || bare == ".." {
        return invalid("'.' and '..' name directories, not channels");
    }
    Ok(format!("/{bare}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        assert_eq!(shm_path("ticks").unwrap(), "/ticks");
        assert_eq!(shm_path("/a.b_c-1").unwrap(), "/a.b_c-1");
        assert!(shm_path(&"x".repeat(200)).is_ok());
        assert!(shm_path(&format!("/{}", "x".repeat(200))).is_ok());
    }

    #[test]
    fn invalid_names() {
        for bad in [
            "",
            "/",
            "a/b",
            "//a",
            "sp ace",
            "é",
            "..",
            ".",
            "a\0b",
            &"x".repeat(201),
        ] {
            assert!(
                matches!(shm_path(bad), Err(Error::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }
}
