//! Model and reasoning-effort choices: what the agent offers (read from its
//! session config options, never from a list of ours) and the pure planning
//! of which options to set for a call's `model`/`effort`.
//!
//! Agents offer effort in one of two ways: a separate select (codex-acp's
//! `reasoning_effort`), or model variants named `model[effort]` in the model
//! select. Both are handled.

use crate::tools::ModelChoice;

/// One select option of the agent: its id, current value and values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Select {
    pub id: String,
    pub current: String,
    pub values: Vec<String>,
}

/// The model and effort selects a session offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelOptions {
    pub model: Option<Select>,
    /// A separate effort select, if the agent has one.
    pub effort: Option<Select>,
}

impl ModelOptions {
    /// The current model, without an effort suffix.
    pub fn current_model(&self) -> Option<String> {
        self.model
            .as_ref()
            .map(|select| split_variant(&select.current).0.to_owned())
    }

    /// The current effort: the effort select's value, else the model's
    /// `[effort]` suffix.
    pub fn current_effort(&self) -> Option<String> {
        match (&self.effort, &self.model) {
            (Some(effort), _) => Some(effort.current.clone()),
            (None, Some(model)) => split_variant(&model.current).1.map(str::to_owned),
            _ => None,
        }
    }

    /// Model names offered, without effort variants, in the agent's order.
    pub fn model_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for value in self.model.iter().flat_map(|select| &select.values) {
            let base = split_variant(value).0;
            if !names.iter().any(|name| name == base) {
                names.push(base.to_owned());
            }
        }
        names
    }

    /// Efforts offered for `model` (the current one when `None`).
    pub fn efforts(&self, model: Option<&str>) -> Vec<String> {
        if let Some(effort) = &self.effort {
            return effort.values.clone();
        }
        let current = self.current_model();
        let Some(base) = model.or(current.as_deref()) else {
            return Vec::new();
        };
        self.model
            .iter()
            .flat_map(|select| &select.values)
            .filter_map(|value| match split_variant(value) {
                (name, Some(effort)) if name == base => Some(effort.to_owned()),
                _ => None,
            })
            .collect()
    }

    /// Records that `changes` were applied.
    pub fn apply(&mut self, changes: &[(String, String)]) {
        for (id, value) in changes {
            for select in [&mut self.model, &mut self.effort].into_iter().flatten() {
                if &select.id == id {
                    select.current = value.clone();
                }
            }
        }
    }
}

/// The `(config id, value)` pairs to set so the session uses `choice`;
/// empty when it already does. An unknown value is an error that lists the
/// valid ones.
pub fn plan(options: &ModelOptions, choice: &ModelChoice) -> Result<Vec<(String, String)>, String> {
    let mut changes = Vec::new();
    let Some(model_select) = &options.model else {
        return match (&choice.model, &choice.effort) {
            (None, None) => Ok(changes),
            (Some(_), _) => Err("model: this Codex offers no model choice".into()),
            (None, Some(effort)) => plan_effort_only(options, effort),
        };
    };
    let (current_base, current_effort) = split_variant(&model_select.current);
    let base = match &choice.model {
        Some(model) => {
            let known = model_select
                .values
                .iter()
                .any(|value| value == model || split_variant(value).0 == model);
            if !known {
                return Err(format!(
                    "model: expected one of {} (what Codex offers), got \"{model}\"",
                    options.model_names().join(", ")
                ));
            }
            model.clone()
        }
        None => current_base.to_owned(),
    };
    let mut target = base.clone();
    match (&choice.effort, &options.effort) {
        (Some(effort), Some(effort_select)) => {
            if !effort_select.values.contains(effort) {
                return Err(format!(
                    "effort: expected one of {} (what Codex offers), got \"{effort}\"",
                    effort_select.values.join(", ")
                ));
            }
            if &effort_select.current != effort {
                changes.push((effort_select.id.clone(), effort.clone()));
            }
        }
        (Some(effort), None) => {
            let (name, _) = split_variant(&base);
            let variant = format!("{name}[{effort}]");
            if !model_select.values.contains(&variant) {
                let efforts = options.efforts(Some(name));
                return Err(if efforts.is_empty() {
                    format!("effort: model `{name}` offers no effort choice")
                } else {
                    format!(
                        "effort: expected one of {} (what Codex offers for `{name}`), got \"{effort}\"",
                        efforts.join(", ")
                    )
                });
            }
            target = variant;
        }
        (None, None) if choice.model.is_some() => {
            // Keep the current effort on the new model when it has one.
            if let Some(effort) = current_effort {
                let (name, _) = split_variant(&base);
                let variant = format!("{name}[{effort}]");
                if model_select.values.contains(&variant) {
                    target = variant;
                }
            }
        }
        (None, _) => {}
    }
    if (choice.model.is_some() || options.effort.is_none() && choice.effort.is_some()) && target != model_select.current
    {
        changes.insert(0, (model_select.id.clone(), target));
    }
    Ok(changes)
}

fn plan_effort_only(options: &ModelOptions, effort: &str) -> Result<Vec<(String, String)>, String> {
    match &options.effort {
        Some(select) if select.values.iter().any(|value| value == effort) => {
            if select.current == effort {
                Ok(Vec::new())
            } else {
                Ok(vec![(select.id.clone(), effort.to_owned())])
            }
        }
        Some(select) => Err(format!(
            "effort: expected one of {} (what Codex offers), got \"{effort}\"",
            select.values.join(", ")
        )),
        None => Err("effort: this Codex offers no effort choice".into()),
    }
}

/// `name[effort]` → (`name`, `Some(effort)`); anything else → (it, `None`).
pub fn split_variant(value: &str) -> (&str, Option<&str>) {
    match value.strip_suffix(']').and_then(|rest| rest.split_once('[')) {
        Some((name, effort)) if !name.is_empty() && !effort.is_empty() => (name, Some(effort)),
        _ => (value, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(id: &str, current: &str, values: &[&str]) -> Select {
        Select {
            id: id.into(),
            current: current.into(),
            values: values.iter().map(|value| value.to_string()).collect(),
        }
    }

    fn choice(model: Option<&str>, effort: Option<&str>) -> ModelChoice {
        ModelChoice {
            model: model.map(String::from),
            effort: effort.map(String::from),
        }
    }

    /// codex-acp's shape: a model select and a separate effort select.
    fn codex() -> ModelOptions {
        ModelOptions {
            model: Some(select("model", "gpt-5.5", &["gpt-6", "gpt-5.5"])),
            effort: Some(select("reasoning_effort", "medium", &["low", "medium", "high"])),
        }
    }

    /// The variant shape: efforts as `model[effort]` values.
    fn variants() -> ModelOptions {
        ModelOptions {
            model: Some(select("model", "big", &["big", "big[low]", "big[high]", "small"])),
            effort: None,
        }
    }

    #[test]
    fn separate_effort_select() {
        let options = codex();
        assert_eq!(plan(&options, &choice(None, None)), Ok(vec![]));
        assert_eq!(
            plan(&options, &choice(Some("gpt-6"), Some("high"))),
            Ok(vec![
                ("model".into(), "gpt-6".into()),
                ("reasoning_effort".into(), "high".into())
            ])
        );
        assert_eq!(plan(&options, &choice(Some("gpt-5.5"), Some("medium"))), Ok(vec![]));
        assert_eq!(
            plan(&options, &choice(None, Some("low"))),
            Ok(vec![("reasoning_effort".into(), "low".into())])
        );
        let error = plan(&options, &choice(Some("gpt-9"), None)).expect_err("unknown model");
        assert_eq!(
            error,
            r#"model: expected one of gpt-6, gpt-5.5 (what Codex offers), got "gpt-9""#
        );
        let error = plan(&options, &choice(None, Some("max"))).expect_err("unknown effort");
        assert_eq!(
            error,
            r#"effort: expected one of low, medium, high (what Codex offers), got "max""#
        );
        assert_eq!(options.current_effort().as_deref(), Some("medium"));
    }

    #[test]
    fn effort_as_model_variants() {
        let options = variants();
        assert_eq!(
            plan(&options, &choice(None, Some("low"))),
            Ok(vec![("model".into(), "big[low]".into())])
        );
        assert_eq!(
            plan(&options, &choice(Some("small"), None)),
            Ok(vec![("model".into(), "small".into())])
        );
        let error = plan(&options, &choice(Some("small"), Some("low"))).expect_err("no effort for small");
        assert_eq!(error, "effort: model `small` offers no effort choice");
        let error = plan(&options, &choice(None, Some("max"))).expect_err("unknown effort");
        assert_eq!(
            error,
            r#"effort: expected one of low, high (what Codex offers for `big`), got "max""#
        );
        assert_eq!(options.model_names(), ["big", "small"]);
        assert_eq!(options.efforts(None), ["low", "high"]);
    }

    #[test]
    fn a_model_change_keeps_the_current_effort_variant_when_it_can() {
        let mut options = variants();
        options.model.as_mut().expect("model").values.push("small[low]".into());
        options.model.as_mut().expect("model").current = "big[low]".into();
        assert_eq!(
            plan(&options, &choice(Some("small"), None)),
            Ok(vec![("model".into(), "small[low]".into())])
        );
        assert_eq!(options.current_model().as_deref(), Some("big"));
        assert_eq!(options.current_effort().as_deref(), Some("low"));
    }

    #[test]
    fn applying_changes_updates_current_values() {
        let mut options = codex();
        options.apply(&[
            ("model".into(), "gpt-6".into()),
            ("reasoning_effort".into(), "high".into()),
        ]);
        assert_eq!(options.current_model().as_deref(), Some("gpt-6"));
        assert_eq!(options.current_effort().as_deref(), Some("high"));
    }

    #[test]
    fn no_choice_offered() {
        let options = ModelOptions::default();
        assert_eq!(plan(&options, &choice(None, None)), Ok(vec![]));
        assert!(plan(&options, &choice(Some("x"), None)).is_err());
        assert!(plan(&options, &choice(None, Some("low"))).is_err());
    }

    #[test]
    fn variant_names_split() {
        assert_eq!(split_variant("gpt-5.5[high]"), ("gpt-5.5", Some("high")));
        assert_eq!(split_variant("gpt-5.5"), ("gpt-5.5", None));
        assert_eq!(split_variant("[x]"), ("[x]", None));
    }
}
