//! The nine MCP tools: their names, descriptions, argument types and the
//! checks that turn raw JSON arguments into a [`ToolCall`] or a clear error.

use codex_fusion_protocol::tools::ToolName;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Arguments of `consult`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsultArgs {
    /// The question or decision you want an independent opinion on.
    pub question: String,
    /// What Codex should know: the goal, what you already tried, constraints.
    #[serde(default)]
    pub context: Option<String>,
    /// Model for this and later turns of the session, e.g. `gpt-5.5`; the
    /// valid names come from Codex (see `status`).
    #[serde(default)]
    pub model: Option<String>,
    /// Reasoning effort for this and later turns, e.g. `low`, `medium`,
    /// `high`; the valid values come from Codex (see `status`).
    #[serde(default)]
    pub effort: Option<String>,
}

/// Arguments of `review_plan`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewPlanArgs {
    /// The plan to critique, step by step.
    pub plan: String,
    /// The goal and constraints the plan must meet.
    #[serde(default)]
    pub context: Option<String>,
    /// Model for this and later turns of the session, e.g. `gpt-5.5`; the
    /// valid names come from Codex (see `status`).
    #[serde(default)]
    pub model: Option<String>,
    /// Reasoning effort for this and later turns, e.g. `low`, `medium`,
    /// `high`; the valid values come from Codex (see `status`).
    #[serde(default)]
    pub effort: Option<String>,
}

/// Arguments of `review_diff`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDiffArgs {
    /// A unified diff to review. Leave out to let Codex inspect `git diff` itself.
    #[serde(default)]
    pub diff: Option<String>,
    /// Files or directories to focus on.
    #[serde(default, deserialize_with = "string_or_list")]
    #[schemars(with = "Option<Vec<String>>")]
    pub paths: Option<Vec<String>>,
    /// What to look for, or what the change is meant to do.
    #[serde(default)]
    pub instructions: Option<String>,
    /// Model for this and later turns of the session, e.g. `gpt-5.5`; the
    /// valid names come from Codex (see `status`).
    #[serde(default)]
    pub model: Option<String>,
    /// Reasoning effort for this and later turns, e.g. `low`, `medium`,
    /// `high`; the valid values come from Codex (see `status`).
    #[serde(default)]
    pub effort: Option<String>,
}

/// Arguments of `brainstorm`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrainstormArgs {
    /// The problem to find approaches for.
    pub problem: String,
    /// Limits any approach must respect.
    #[serde(default)]
    pub constraints: Option<String>,
    /// Model for this and later turns of the session, e.g. `gpt-5.5`; the
    /// valid names come from Codex (see `status`).
    #[serde(default)]
    pub model: Option<String>,
    /// Reasoning effort for this and later turns, e.g. `low`, `medium`,
    /// `high`; the valid values come from Codex (see `status`).
    #[serde(default)]
    pub effort: Option<String>,
}

/// Arguments of `explore`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExploreArgs {
    /// What to understand: a feature, a flow, a question about the code.
    #[serde(default)]
    pub focus: Option<String>,
    /// Files or directories to start from.
    #[serde(default, deserialize_with = "string_or_list")]
    #[schemars(with = "Option<Vec<String>>")]
    pub paths: Option<Vec<String>>,
    /// Model for this and later turns of the session, e.g. `gpt-5.5`; the
    /// valid names come from Codex (see `status`).
    #[serde(default)]
    pub model: Option<String>,
    /// Reasoning effort for this and later turns, e.g. `low`, `medium`,
    /// `high`; the valid values come from Codex (see `status`).
    #[serde(default)]
    pub effort: Option<String>,
}

/// Arguments of `reply`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyArgs {
    /// Your answer to Codex's last reply: agree, push back, or bring new facts.
    pub message: String,
    /// Model for this and later turns of the session, e.g. `gpt-5.5`; the
    /// valid names come from Codex (see `status`).
    #[serde(default)]
    pub model: Option<String>,
    /// Reasoning effort for this and later turns, e.g. `low`, `medium`,
    /// `high`; the valid values come from Codex (see `status`).
    #[serde(default)]
    pub effort: Option<String>,
}

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PermitDecision {
    Allow,
    Deny,
}

/// Arguments of `permit`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PermitArgs {
    /// `allow` lets Codex do what it asked; `deny` refuses and Codex answers without it.
    pub decision: PermitDecision,
    /// A short note for Codex, e.g. why you denied or what to do instead.
    #[serde(default)]
    pub note: Option<String>,
    /// The pause this answers, as its `🔐` showed it (`id: p3f9a`). When
    /// given and another pause is waiting, the permit is refused and
    /// nothing is decided.
    #[serde(default)]
    pub id: Option<String>,
}

/// Arguments of `reset` and `status`: none.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// A validated call of one of the turn-starting tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnTool {
    Consult(ConsultArgs),
    ReviewPlan(ReviewPlanArgs),
    ReviewDiff(ReviewDiffArgs),
    Brainstorm(BrainstormArgs),
    Explore(ExploreArgs),
    Reply(ReplyArgs),
}

/// The model and effort a turn asks for (either may be absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelChoice {
    pub model: Option<String>,
    pub effort: Option<String>,
}

impl ModelChoice {
    pub fn is_empty(&self) -> bool {
        self.model.is_none() && self.effort.is_none()
    }
}

impl TurnTool {
    /// The model and effort this call asks for.
    pub fn choice(&self) -> ModelChoice {
        let (model, effort) = match self {
            TurnTool::Consult(args) => (&args.model, &args.effort),
            TurnTool::ReviewPlan(args) => (&args.model, &args.effort),
            TurnTool::ReviewDiff(args) => (&args.model, &args.effort),
            TurnTool::Brainstorm(args) => (&args.model, &args.effort),
            TurnTool::Explore(args) => (&args.model, &args.effort),
            TurnTool::Reply(args) => (&args.model, &args.effort),
        };
        let clean = |value: &Option<String>| {
            value
                .as_ref()
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        ModelChoice {
            model: clean(model),
            effort: clean(effort),
        }
    }

    pub fn tool(&self) -> ToolName {
        match self {
            TurnTool::Consult(_) => ToolName::Consult,
            TurnTool::ReviewPlan(_) => ToolName::ReviewPlan,
            TurnTool::ReviewDiff(_) => ToolName::ReviewDiff,
            TurnTool::Brainstorm(_) => ToolName::Brainstorm,
            TurnTool::Explore(_) => ToolName::Explore,
            TurnTool::Reply(_) => ToolName::Reply,
        }
    }

    pub fn name(&self) -> &'static str {
        self.tool().as_str()
    }
}

/// A validated tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCall {
    Turn(TurnTool),
    Permit(PermitArgs),
    Reset,
    Status,
}

/// Why arguments were refused. The text is shown to Claude as an MCP error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("unknown tool `{0}`; the tools are: {names}", names = ToolName::list())]
    UnknownTool(String),
    #[error("{tool}: {message}")]
    Invalid { tool: &'static str, message: String },
    #[error("{tool}: `{field}` must not be empty")]
    Empty { tool: &'static str, field: &'static str },
}

/// Parses and checks the arguments of tool `name`.
pub fn parse_call(name: &str, arguments: Option<Map<String, Value>>) -> Result<ToolCall, ArgsError> {
    let Some(tool) = ToolName::parse(name) else {
        return Err(ArgsError::UnknownTool(name.to_owned()));
    };
    let name = tool.as_str();
    let arguments = Value::Object(arguments.unwrap_or_default());
    let call = match tool {
        ToolName::Consult => {
            let args: ConsultArgs = parse(name, arguments)?;
            non_empty(name, "question", &args.question)?;
            ToolCall::Turn(TurnTool::Consult(args))
        }
        ToolName::ReviewPlan => {
            let args: ReviewPlanArgs = parse(name, arguments)?;
            non_empty(name, "plan", &args.plan)?;
            ToolCall::Turn(TurnTool::ReviewPlan(args))
        }
        ToolName::ReviewDiff => ToolCall::Turn(TurnTool::ReviewDiff(parse(name, arguments)?)),
        ToolName::Brainstorm => {
            let args: BrainstormArgs = parse(name, arguments)?;
            non_empty(name, "problem", &args.problem)?;
            ToolCall::Turn(TurnTool::Brainstorm(args))
        }
        ToolName::Explore => ToolCall::Turn(TurnTool::Explore(parse(name, arguments)?)),
        ToolName::Reply => {
            let args: ReplyArgs = parse(name, arguments)?;
            non_empty(name, "message", &args.message)?;
            ToolCall::Turn(TurnTool::Reply(args))
        }
        ToolName::Permit => ToolCall::Permit(parse(name, arguments)?),
        ToolName::Reset => {
            let _: NoArgs = parse(name, arguments)?;
            ToolCall::Reset
        }
        ToolName::Status => {
            let _: NoArgs = parse(name, arguments)?;
            ToolCall::Status
        }
    };
    Ok(call)
}

/// Name, description and argument schema of every tool, in SPEC order.
pub fn definitions() -> Vec<(&'static str, &'static str, Map<String, Value>)> {
    ToolName::ALL
        .into_iter()
        .map(|tool| {
            let (description, schema) = match tool {
                ToolName::Consult => (CONSULT, schema::<ConsultArgs>()),
                ToolName::ReviewPlan => (REVIEW_PLAN, schema::<ReviewPlanArgs>()),
                ToolName::ReviewDiff => (REVIEW_DIFF, schema::<ReviewDiffArgs>()),
                ToolName::Brainstorm => (BRAINSTORM, schema::<BrainstormArgs>()),
                ToolName::Explore => (EXPLORE, schema::<ExploreArgs>()),
                ToolName::Reply => (REPLY, schema::<ReplyArgs>()),
                ToolName::Permit => (PERMIT, schema::<PermitArgs>()),
                ToolName::Reset => (RESET, schema::<NoArgs>()),
                ToolName::Status => (STATUS, schema::<NoArgs>()),
            };
            (tool.as_str(), description, schema)
        })
        .collect()
}

const CONSULT: &str = "Ask Codex (OpenAI) for an independent second opinion on a question or decision. \
Codex reads the workspace to ground its answer and ends with `VERDICT: CONSENSUS — …` or `VERDICT: OPEN — …`. \
Continue the debate with `reply`.";
const REVIEW_PLAN: &str = "Have Codex critique a plan before you implement it: gaps, risks, ordering, simpler \
alternatives. Ends with a VERDICT line; continue with `reply`.";
const REVIEW_DIFF: &str = "Have Codex review code changes: pass a unified diff, or leave `diff` out and Codex \
inspects `git diff` itself (it asks permission to run it). Ends with a VERDICT line; continue with `reply`.";
const BRAINSTORM: &str = "Ask Codex for 2–4 distinct approaches to a problem, with trade-offs and one \
recommendation. Ends with a VERDICT line; continue with `reply`.";
const EXPLORE: &str = "Have Codex map an unfamiliar codebase (or the part named by `focus`/`paths`): structure, \
key components, how a request flows, conventions.";
const REPLY: &str = "Continue the debate on the same Codex session: answer Codex's last reply, push back or \
concede. Codex remembers the thread. Ends with a VERDICT line.";
const PERMIT: &str = "Resolve the permission Codex asked for (a result starting with `🔐 Codex paused`) and \
resume that same turn: `allow` lets it go ahead; `deny` refuses and Codex answers without it. Pass the pause's \
`id` so that a stale or repeated call cannot answer another pause. Returns the turn's next pause or its answer.";
const RESET: &str = "Drop Codex's context for this workspace; the next call starts a fresh Codex session.";
const STATUS: &str = "Health of codex-fusion for this workspace: guardian settings, Codex session, pending \
permission, daemon uptime, recent codex-acp stderr.";

fn schema<T: JsonSchema>() -> Map<String, Value> {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|settings| {
        settings.inline_subschemas = true;
    });
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut object = match serde_json::to_value(schema) {
        Ok(Value::Object(object)) => object,
        _ => Map::new(),
    };
    // Clients only need the shape; drop the noise schemars adds at the top.
    object.remove("$schema");
    object.remove("title");
    object.remove("description");
    object.entry("type").or_insert_with(|| Value::String("object".into()));
    object.entry("properties").or_insert_with(|| Value::Object(Map::new()));
    object
}

fn parse<T: serde::de::DeserializeOwned>(tool: &'static str, arguments: Value) -> Result<T, ArgsError> {
    serde_json::from_value(arguments).map_err(|error| ArgsError::Invalid {
        tool,
        message: error.to_string(),
    })
}

fn non_empty(tool: &'static str, field: &'static str, value: &str) -> Result<(), ArgsError> {
    if value.trim().is_empty() {
        Err(ArgsError::Empty { tool, field })
    } else {
        Ok(())
    }
}

/// Accepts `"a b"`-style single strings as well as lists for `paths`.
fn string_or_list<'de, D>(deserializer: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => None,
        Some(OneOrMany::One(path)) => Some(vec![path]),
        Some(OneOrMany::Many(paths)) => Some(paths),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(name: &str, arguments: Value) -> Result<ToolCall, ArgsError> {
        let Value::Object(map) = arguments else {
            panic!("object")
        };
        parse_call(name, Some(map))
    }

    #[test]
    fn required_fields_are_enforced_with_clear_messages() {
        let error = call("consult", json!({})).expect_err("missing question");
        assert_eq!(error.to_string(), "consult: missing field `question`");
        let error = call("consult", json!({"question": "  "})).expect_err("empty question");
        assert_eq!(error.to_string(), "consult: `question` must not be empty");
        let error = call("permit", json!({"decision": "maybe"})).expect_err("bad decision");
        assert!(error.to_string().contains("unknown variant `maybe`"), "{error}");
        assert!(error.to_string().contains("allow"), "{error}");
        let error = call("permit", json!({"decision": "allow", "agent": "codex"})).expect_err("no agent yet");
        assert!(error.to_string().contains("unknown field `agent`"), "{error}");
        assert_eq!(
            call("permit", json!({"decision": "deny", "id": "p3f9a"})),
            Ok(ToolCall::Permit(PermitArgs {
                decision: PermitDecision::Deny,
                note: None,
                id: Some("p3f9a".into())
            }))
        );
        let error = call("reply", json!({"message": "x", "extra": 1})).expect_err("unknown field");
        assert!(error.to_string().contains("unknown field `extra`"), "{error}");
        let error = call("consult", json!({"question": 42})).expect_err("wrong type");
        assert!(error.to_string().starts_with("consult: invalid type"), "{error}");
        let error = parse_call("nope", None).expect_err("unknown tool");
        assert!(error.to_string().contains("consult, review_plan"), "{error}");
    }

    #[test]
    fn optional_tools_accept_no_arguments() {
        assert!(matches!(
            parse_call("review_diff", None),
            Ok(ToolCall::Turn(TurnTool::ReviewDiff(_)))
        ));
        assert!(matches!(
            parse_call("explore", None),
            Ok(ToolCall::Turn(TurnTool::Explore(_)))
        ));
        assert_eq!(parse_call("reset", None), Ok(ToolCall::Reset));
        assert_eq!(parse_call("status", None), Ok(ToolCall::Status));
    }

    #[test]
    fn paths_accept_a_string_or_a_list() {
        let Ok(ToolCall::Turn(TurnTool::Explore(args))) = call("explore", json!({"paths": "src"})) else {
            panic!("parses")
        };
        assert_eq!(args.paths, Some(vec!["src".to_string()]));
        let Ok(ToolCall::Turn(TurnTool::Explore(args))) = call("explore", json!({"paths": ["a", "b"]})) else {
            panic!("parses")
        };
        assert_eq!(args.paths, Some(vec!["a".to_string(), "b".to_string()]));
    }

    #[test]
    fn schemas_mark_required_fields() {
        let definitions = definitions();
        assert_eq!(
            definitions.iter().map(|(name, _, _)| *name).collect::<Vec<_>>(),
            ToolName::ALL.map(ToolName::as_str)
        );
        let consult = &definitions[0].2;
        assert_eq!(consult["required"], json!(["question"]));
        assert_eq!(consult["type"], json!("object"));
        let permit = &definitions[6].2;
        assert_eq!(permit["required"], json!(["decision"]));
        assert_eq!(permit["properties"]["decision"]["enum"], json!(["allow", "deny"]));
        let names: std::collections::BTreeSet<&str> = permit["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            names,
            ["decision", "id", "note"].into(),
            "no `agent` yet: that is a later issue"
        );
        assert!(
            permit["properties"]["id"]["description"]
                .as_str()
                .is_some_and(|text| text.contains("🔐")),
            "{permit:?}"
        );
        let reset = &definitions[7].2;
        assert_eq!(reset["type"], json!("object"));
    }
}
