//! Edits of `mldeploy.yaml` in place for `mldeploy promote`: only the affected values change,
//! by their source spans, so comments, quoting, order and formatting stay as the user wrote them.

use super::yaml::{Node, Seg, Value};

/// One replacement of a byte range.
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

fn apply(src: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| std::cmp::Reverse(e.start));
    let mut out = src.to_string();
    for e in edits {
        out.replace_range(e.start..e.end, &e.text);
    }
    out
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// The index of model `name` under `models`.
fn model_index(root: &Node, name: &str) -> Result<usize, String> {
    match root.get("models").map(|n| &n.value) {
        Some(Value::Seq(items)) => items
            .iter()
            .position(|m| m.get("name").and_then(Node::as_key).as_deref() == Some(name))
            .ok_or_else(|| format!("models has no `{name}`")),
        _ => Err("the config has no models".into()),
    }
}

/// The span of a scalar, checked to be one (a span the parser knows).
fn scalar_span(src: &str, n: &Node, what: &str) -> Result<(usize, usize), String> {
    let (start, end) = (n.loc.offset, n.loc.offset + n.loc.len);
    let ok = matches!(
        n.value,
        Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_)
    ) && n.loc.len > 0
        && end <= src.len()
        && src.is_char_boundary(start)
        && src.is_char_boundary(end);
    if ok {
        Ok((start, end))
    } else {
        Err(format!("cannot locate {what} in the file to edit it"))
    }
}

/// Byte offset where 1-based `line` starts.
fn line_start(src: &str, line: u32) -> usize {
    if line <= 1 {
        return 0;
    }
    src.match_indices('\n')
        .nth(usize::try_from(line - 2).unwrap_or(usize::MAX))
        .map_or(src.len(), |(i, _)| i + 1)
}

/// The byte range of the block-style entry whose key is `k` (its line through the last line
/// indented deeper than it), for removal.
fn entry_lines(src: &str, k: &Node, what: &str) -> Result<(usize, usize), String> {
    let start = line_start(src, k.loc.line);
    let key_at = k.loc.offset;
    let before = src.get(start..key_at).unwrap_or("x");
    if !before.chars().all(|c| c == ' ') {
        return Err(format!(
            "{what} is not on a line of its own (flow style `{{…}}` or `- {what}:`); edit it by hand"
        ));
    }
    let indent = before.len();
    let mut end = src[start..].find('\n').map_or(src.len(), |i| start + i + 1);
    let mut cursor = end;
    while cursor < src.len() {
        let next = src[cursor..]
            .find('\n')
            .map_or(src.len(), |i| cursor + i + 1);
        let line = &src[cursor..next];
        let trimmed = line.trim_start_matches(' ');
        let deeper = line.len() - trimmed.len() > indent;
        if trimmed.trim().is_empty() {
            cursor = next;
            continue;
        }
        if !deeper {
            break;
        }
        end = next;
        cursor = next;
    }
    Ok((start, end))
}

/// The model node and its canary node, refusing a canary set by an environment's overrides.
fn canary_of<'a>(
    root: &'a Node,
    model: &str,
    env: &str,
) -> Result<(usize, &'a Node, &'a Node), String> {
    let i = model_index(root, model)?;
    let m = root.lookup(&[key("models"), Seg::Index(i)]);
    let overridden = [
        key("environments"),
        key(env),
        key("overrides"),
        key("models"),
        key(model),
        key("canary"),
    ];
    if root.exists(&overridden) {
        return Err(format!(
            "environments.{env}.overrides.models.{model}.canary sets the canary; promote edits \
             models[{i}].canary only — move the canary there, or edit by hand"
        ));
    }
    let canary = m
        .get("canary")
        .filter(|c| matches!(c.value, Value::Map(_)))
        .ok_or_else(|| format!("models[{i}] (`{model}`) has no canary to promote"))?;
    Ok((i, m, canary))
}

/// Sets `models[<model>].canary.traffic` to `traffic`.
pub fn set_canary_traffic(
    src: &str,
    root: &Node,
    model: &str,
    env: &str,
    traffic: u32,
) -> Result<String, String> {
    let (i, _, canary) = canary_of(root, model, env)?;
    let t = canary
        .get("traffic")
        .ok_or_else(|| format!("models[{i}].canary has no traffic"))?;
    let (start, end) = scalar_span(src, t, &format!("models[{i}].canary.traffic"))?;
    Ok(apply(
        src,
        vec![Edit {
            start,
            end,
            text: traffic.to_string(),
        }],
    ))
}

/// Makes the canary the model: its `image` (or `modelUri`) replaces the model's, written as the
/// canary's was, and the `canary` entry is removed.
pub fn promote_canary(src: &str, root: &Node, model: &str, env: &str) -> Result<String, String> {
    let (i, m, canary) = canary_of(root, model, env)?;
    let field = ["image", "modelUri"]
        .into_iter()
        .find(|f| canary.get(f).is_some())
        .ok_or_else(|| format!("models[{i}].canary has neither image nor modelUri"))?;
    let new = canary.get(field).ok_or("unreachable")?;
    let (ns, ne) = scalar_span(src, new, &format!("models[{i}].canary.{field}"))?;
    let old = m
        .get(field)
        .ok_or_else(|| format!("models[{i}] has no `{field}` (is it inherited?); edit by hand"))?;
    let (os, oe) = scalar_span(src, old, &format!("models[{i}].{field}"))?;
    let canary_key = m.key_node("canary").ok_or("unreachable")?;
    let (cs, ce) = entry_lines(src, canary_key, "canary")?;
    if (cs..ce).contains(&os) {
        return Err(format!("models[{i}].{field} is inside the canary entry"));
    }
    Ok(apply(
        src,
        vec![
            Edit {
                start: os,
                end: oe,
                text: src[ns..ne].to_string(),
            },
            Edit {
                start: cs,
                end: ce,
                text: String::new(),
            },
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;

    const SRC: &str = "\
version: 1
project: shop   # the shop
models:
  # the detector
  - name: det
    image: \"registry/det:1.4\"   # current
    port: 9000
    canary:
      # next version
      image: 'registry/det:1.5'
      traffic: 10

    replicas: 2
  - name: fraud
    server: xgboost
    modelUri: gs://m/v3
    canary: {modelUri: gs://m/v4, traffic: 25}
environments:
  prod: {cluster: c}
";

    #[test]
    fn promotion_keeps_everything_else() {
        let root = parse(SRC).unwrap();
        let out = promote_canary(SRC, &root, "det", "prod").unwrap();
        assert_eq!(
            out,
            SRC.replace("\"registry/det:1.4\"", "'registry/det:1.5'").replace(
                "    canary:\n      # next version\n      image: 'registry/det:1.5'\n      traffic: 10\n",
                ""
            )
        );
        let root = parse(SRC).unwrap();
        let out = promote_canary(SRC, &root, "fraud", "prod").unwrap();
        assert!(
            out.contains("    modelUri: gs://m/v4\nenvironments:"),
            "{out}"
        );
        assert!(!out.contains("traffic: 25"));
    }

    #[test]
    fn traffic_is_set_in_place() {
        let root = parse(SRC).unwrap();
        let out = set_canary_traffic(SRC, &root, "fraud", "prod", 0).unwrap();
        assert_eq!(out, SRC.replace("traffic: 25", "traffic: 0"));
    }

    #[test]
    fn a_canary_from_overrides_is_refused() {
        let src = format!(
            "{SRC}    overrides: {{models: {{det: {{canary: {{image: x, traffic: 5}}}}}}}}\n"
        )
        .replace("prod: {cluster: c}", "prod:\n    cluster: c");
        let root = parse(&src).unwrap();
        assert!(
            promote_canary(&src, &root, "det", "prod")
                .unwrap_err()
                .contains("overrides")
        );
    }
}
