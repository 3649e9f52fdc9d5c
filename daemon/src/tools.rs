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
    /// valid names come from the agent (see `status`). For a council, one
    /// per agent: `codex=gpt-5.5,claude=opus`.
    #[serde(default)]
    pub model: Option<String>,
    /// Reasoning effort for this and later turns, e.g. `low`, `medium`,
    /// `high`; the valid values come from Codex (see `status`).
    #[serde(default)]
    pub effort: Option<String>,
    /// Which agents answer: names from `CODEX_FUSION_AGENTS`. Several make
    /// a council: each answers the same prompt on its own session, and the
    /// result has one section per agent and a tally of their verdicts.
    /// Leave out for the default agent (for `reply`: the agents of the last
    /// turn).
    #[serde(default, deserialize_with = "string_or_list")]
    #[schemars(with = "Option<Vec<String>>")]
    pub agents: Option<Vec<String>>,
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
    /// valid names come from the agent (see `status`). For a council, one
    /// per agent: `codex=gpt-5.5,claude=opus`.
    #[serde(default)]
    pub model: Option<String>,
    /// Reasoning effort for this and later turns, e.g. `low`, `medium`,
    /// `high`; the valid values come from Codex (see `status`).
    #[serde(default)]
    pub effort: Option<String>,
    /// Which agents answer: names from `CODEX_FUSION_AGENTS`. Several make
    /// a council: each answers the same prompt on its own session, and the
    /// result has one section per agent and a tally of their verdicts.
    /// Leave out for the default agent (for `reply`: the agents of the last
    /// turn).
    #[serde(default, deserialize_with = "string_or_list")]
    #[schemars(with = "Option<Vec<String>>")]
    pub agents: Option<Vec<String>>,
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
    /// valid names come from the agent (see `status`). For a council, one
    /// per agent: `codex=gpt-5.5,claude=opus`.
    #[serde(default)]
    pub model: Option<String>,
    /// Reasoning effort for this and later turns, e.g. `low`, `medium`,
    /// `high`; the valid values come from Codex (see `status`).
    #[serde(default)]
    pub effort: Option<String>,
    /// Which agents answer: names from `CODEX_FUSION_AGENTS`. Several make
    /// a council: each answers the same prompt on its own session, and the
    /// result has one section per agent and a tally of their verdicts.
    /// Leave out for the default agent (for `reply`: the agents of the last
    /// turn).
    #[serde(default, deserialize_with = "string_or_list")]
    #[schemars(with = "Option<Vec<String>>")]
    pub agents: Option<Vec<String>>,
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
    /// valid names come from the agent (see `status`). For a council, one
    /// per agent: `codex=gpt-5.5,claude=opus`.
    #[serde(default)]
    pub model: Option<String>,
    /// Reasoning effort for this and later turns, e.g. `low`, `medium`,
    /// `high`; the valid values come from Codex (see `status`).
    #[serde(default)]
    pub effort: Option<String>,
    /// Which agents answer: names from `CODEX_FUSION_AGENTS`. Several make
    /// a council: each answers the same prompt on its own session, and the
    /// result has one section per agent and a tally of their verdicts.
    /// Leave out for the default agent (for `reply`: the agents of the last
    /// turn).
    #[serde(default, deserialize_with = "string_or_list")]
    #[schemars(with = "Option<Vec<String>>")]
    pub agents: Option<Vec<String>>,
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
    /// valid names come from the agent (see `status`). For a council, one
    /// per agent: `codex=gpt-5.5,claude=opus`.
    #[serde(default)]
    pub model: Option<String>,
    /// Reasoning effort for this and later turns, e.g. `low`, `medium`,
    /// `high`; the valid values come from Codex (see `status`).
    #[serde(default)]
    pub effort: Option<String>,
    /// Which agents answer: names from `CODEX_FUSION_AGENTS`. Several make
    /// a council: each answers the same prompt on its own session, and the
    /// result has one section per agent and a tally of their verdicts.
    /// Leave out for the default agent (for `reply`: the agents of the last
    /// turn).
    #[serde(default, deserialize_with = "string_or_list")]
    #[schemars(with = "Option<Vec<String>>")]
    pub agents: Option<Vec<String>>,
}

/// Arguments of `reply`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyArgs {
    /// Your answer to Codex's last reply: agree, push back, or bring new facts.
    pub message: String,
    /// Model for this and later turns of the session, e.g. `gpt-5.5`; the
    /// valid names come from the agent (see `status`). For a council, one
    /// per agent: `codex=gpt-5.5,claude=opus`.
    #[serde(default)]
    pub model: Option<String>,
    /// Reasoning effort for this and later turns, e.g. `low`, `medium`,
    /// `high`; the valid values come from Codex (see `status`).
    #[serde(default)]
    pub effort: Option<String>,
    /// Which agents answer: names from `CODEX_FUSION_AGENTS`. Several make
    /// a council: each answers the same prompt on its own session, and the
    /// result has one section per agent and a tally of their verdicts.
    /// Leave out for the default agent (for `reply`: the agents of the last
    /// turn).
    #[serde(default, deserialize_with = "string_or_list")]
    #[schemars(with = "Option<Vec<String>>")]
    pub agents: Option<Vec<String>>,
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
    /// Which agent's pause this answers, when several agents of a council
    /// are paused (the `🔐` names the agent).
    #[serde(default)]
    pub agent: Option<String>,
}

/// Arguments of `reset`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetArgs {
    /// The agents whose sessions to drop; leave out to drop every agent's.
    #[serde(default, deserialize_with = "string_or_list")]
    #[schemars(with = "Option<Vec<String>>")]
    pub agents: Option<Vec<String>>,
}

/// Arguments of `status`: none.
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

    /// The choice for agent `agent` of a council: a value written per agent
    /// (`codex=gpt-5.5,claude=opus`) gives each its own, an agent it does not
    /// name keeps its current one; a plain value goes to every agent.
    pub fn for_agent(&self, agent: &str) -> ModelChoice {
        let pick = |value: &Option<String>| -> Option<String> {
            let value = value.as_deref()?;
            if !value.contains('=') {
                return Some(value.to_owned());
            }
            value
                .split(',')
                .filter_map(|part| part.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case(agent))
                .map(|(_, value)| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        ModelChoice {
            model: pick(&self.model),
            effort: pick(&self.effort),
        }
    }
}

impl TurnTool {
    /// The agents this call names, if it names any.
    pub fn agents(&self) -> Option<&[String]> {
        let agents = match self {
            TurnTool::Consult(args) => &args.agents,
            TurnTool::ReviewPlan(args) => &args.agents,
            TurnTool::ReviewDiff(args) => &args.agents,
            TurnTool::Brainstorm(args) => &args.agents,
            TurnTool::Explore(args) => &args.agents,
            TurnTool::Reply(args) => &args.agents,
        };
        agents.as_deref().filter(|agents| !agents.is_empty())
    }

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
    Reset(ResetArgs),
    Status,
}

/// Why arguments were refused. The text is shown to Claude as an MCP error
/// and names the argument at fault first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("unknown tool `{0}`; the tools are: {names}", names = ToolName::list())]
    UnknownTool(String),
    #[error("{field}: unknown argument; {tool} takes {known}")]
    UnknownField {
        tool: &'static str,
        field: String,
        /// The arguments the tool takes, for a person ("question, context, …").
        known: String,
    },
    #[error("{field}: required, but missing")]
    Missing { field: String },
    #[error("{field}: expected {expected}, got {got}")]
    WrongValue {
        field: String,
        expected: String,
        /// The value as JSON, shortened.
        got: String,
    },
    #[error("{field}: must not be empty")]
    Empty { field: &'static str },
    /// Arguments the schema check let through but serde refused; the checks
    /// should make this unreachable.
    #[error("{tool}: {message}")]
    Invalid { tool: &'static str, message: String },
}

/// Parses and checks the arguments of tool `name`.
pub fn parse_call(name: &str, arguments: Option<Map<String, Value>>) -> Result<ToolCall, ArgsError> {
    let Some(tool) = ToolName::parse(name) else {
        return Err(ArgsError::UnknownTool(name.to_owned()));
    };
    let name = tool.as_str();
    let arguments = arguments.unwrap_or_default();
    if let Some((_, _, schema)) = DEFINITIONS.iter().find(|(known, _, _)| *known == name) {
        check_arguments(name, schema, &arguments)?;
    }
    let arguments = Value::Object(arguments);
    let call = match tool {
        ToolName::Consult => {
            let args: ConsultArgs = parse(name, arguments)?;
            non_empty("question", &args.question)?;
            ToolCall::Turn(TurnTool::Consult(args))
        }
        ToolName::ReviewPlan => {
            let args: ReviewPlanArgs = parse(name, arguments)?;
            non_empty("plan", &args.plan)?;
            ToolCall::Turn(TurnTool::ReviewPlan(args))
        }
        ToolName::ReviewDiff => ToolCall::Turn(TurnTool::ReviewDiff(parse(name, arguments)?)),
        ToolName::Brainstorm => {
            let args: BrainstormArgs = parse(name, arguments)?;
            non_empty("problem", &args.problem)?;
            ToolCall::Turn(TurnTool::Brainstorm(args))
        }
        ToolName::Explore => ToolCall::Turn(TurnTool::Explore(parse(name, arguments)?)),
        ToolName::Reply => {
            let args: ReplyArgs = parse(name, arguments)?;
            non_empty("message", &args.message)?;
            ToolCall::Turn(TurnTool::Reply(args))
        }
        ToolName::Permit => ToolCall::Permit(parse(name, arguments)?),
        ToolName::Reset => ToolCall::Reset(parse(name, arguments)?),
        ToolName::Status => {
            let _: NoArgs = parse(name, arguments)?;
            ToolCall::Status
        }
    };
    Ok(call)
}

/// Every tool's definition, built once: `parse_call` checks arguments
/// against these schemas, so what Claude is told and what is enforced are
/// one rule.
static DEFINITIONS: std::sync::LazyLock<Vec<Definition>> = std::sync::LazyLock::new(definitions);

/// A tool's name, description and argument schema.
pub type Definition = (&'static str, &'static str, Map<String, Value>);

/// What a client may show and assume about a tool before calling it (MCP
/// tool annotations). `None` leaves the MCP default, which is the cautious
/// one: not read-only, destructive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    pub title: &'static str,
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
    pub idempotent: Option<bool>,
}

/// The hints of `tool`. A turn tool changes nothing by itself: Codex
/// reads, and anything else waits for `permit`; so it is not destructive,
/// though not read-only either. `permit` keeps the default, since `allow`
/// lets Codex run what it asked for; `reset` drops Codex's context.
pub fn hints(tool: ToolName) -> Hints {
    let turn = |title| Hints {
        title,
        read_only: None,
        destructive: Some(false),
        idempotent: None,
    };
    match tool {
        ToolName::Consult => turn("Consult Codex"),
        ToolName::ReviewPlan => turn("Codex reviews a plan"),
        ToolName::ReviewDiff => turn("Codex reviews a diff"),
        ToolName::Brainstorm => turn("Brainstorm with Codex"),
        ToolName::Explore => turn("Codex explores the codebase"),
        ToolName::Reply => turn("Reply to Codex"),
        ToolName::Permit => Hints {
            title: "Answer Codex's permission request",
            read_only: None,
            destructive: None,
            idempotent: None,
        },
        ToolName::Reset => Hints {
            title: "Reset Codex's session",
            read_only: None,
            destructive: Some(true),
            idempotent: Some(true),
        },
        ToolName::Status => Hints {
            title: "codex-fusion status",
            read_only: Some(true),
            destructive: None,
            idempotent: None,
        },
    }
}

/// Name, description and argument schema of every tool, in SPEC order.
pub fn definitions() -> Vec<Definition> {
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
                ToolName::Reset => (RESET, schema::<ResetArgs>()),
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

fn non_empty(field: &'static str, value: &str) -> Result<(), ArgsError> {
    if value.trim().is_empty() {
        Err(ArgsError::Empty { field })
    } else {
        Ok(())
    }
}

/// Checks `arguments` against `tool`'s schema (as [`schema`] builds it):
/// no argument it does not take, every required one, each of the type it
/// declares. Each error names the argument, which serde's do not always.
fn check_arguments(
    tool: &'static str,
    schema: &Map<String, Value>,
    arguments: &Map<String, Value>,
) -> Result<(), ArgsError> {
    let properties = schema.get("properties").and_then(Value::as_object);
    for (field, value) in arguments {
        let Some(property) = properties.and_then(|properties| properties.get(field)) else {
            let known: Vec<&str> = properties
                .into_iter()
                .flatten()
                .map(|(name, _)| name.as_str())
                .collect();
            return Err(ArgsError::UnknownField {
                tool,
                field: field.clone(),
                known: if known.is_empty() {
                    "no arguments".to_owned()
                } else {
                    known.join(", ")
                },
            });
        };
        check_value(field, property, value)?;
    }
    let required = schema.get("required").and_then(Value::as_array);
    if let Some(field) = required
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|field| !arguments.contains_key(*field))
    {
        return Err(ArgsError::Missing {
            field: field.to_owned(),
        });
    }
    Ok(())
}

/// Checks one argument against its property schema: an `enum` of strings,
/// a string, or a list of strings (which also takes one string, as
/// `string_or_list` does); `null` where the type allows it.
fn check_value(field: &str, property: &Value, value: &Value) -> Result<(), ArgsError> {
    let types: Vec<&str> = match property.get("type") {
        Some(Value::String(kind)) => vec![kind.as_str()],
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if value.is_null() && types.contains(&"null") {
        return Ok(());
    }
    let wrong = |expected: String| ArgsError::WrongValue {
        field: field.to_owned(),
        expected,
        got: shown(value),
    };
    if let Some(choices) = property.get("enum").and_then(Value::as_array) {
        let choices: Vec<&str> = choices.iter().filter_map(Value::as_str).collect();
        return match value.as_str() {
            Some(text) if choices.contains(&text) => Ok(()),
            _ => Err(wrong(one_of(&choices))),
        };
    }
    if types.contains(&"array") {
        return match value {
            Value::String(_) => Ok(()),
            Value::Array(items) if items.iter().all(Value::is_string) => Ok(()),
            _ => Err(wrong("a string or a list of strings".to_owned())),
        };
    }
    if types.contains(&"string") && !value.is_string() {
        return Err(wrong("a string".to_owned()));
    }
    Ok(())
}

/// "allow or deny", "a, b or c".
fn one_of(choices: &[&str]) -> String {
    match choices.split_last() {
        None => "nothing".to_owned(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// A value as JSON for an error message: at most 60 characters, so a wrong
/// argument holding a whole file does not fill the error.
fn shown(value: &Value) -> String {
    const LONGEST: usize = 60;
    let text = value.to_string();
    if text.chars().count() <= LONGEST {
        return text;
    }
    let mut cut: String = text.chars().take(LONGEST - 1).collect();
    cut.push('…');
    cut
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

    fn message(name: &str, arguments: Value) -> String {
        call(name, arguments).expect_err("refused").to_string()
    }

    #[test]
    fn every_argument_error_names_the_field() {
        // (tool, arguments, the whole message)
        let rows: &[(&str, Value, &str)] = &[
            // a required argument missing
            ("consult", json!({}), "question: required, but missing"),
            ("permit", json!({"note": "x"}), "decision: required, but missing"),
            ("reply", json!({}), "message: required, but missing"),
            // present but empty
            ("consult", json!({"question": "  "}), "question: must not be empty"),
            ("review_plan", json!({"plan": ""}), "plan: must not be empty"),
            ("brainstorm", json!({"problem": "\n"}), "problem: must not be empty"),
            // not one of the choices
            (
                "permit",
                json!({"decision": "maybe"}),
                r#"decision: expected allow or deny, got "maybe""#,
            ),
            (
                "permit",
                json!({"decision": true}),
                "decision: expected allow or deny, got true",
            ),
            (
                "permit",
                json!({"decision": null}),
                "decision: expected allow or deny, got null",
            ),
            // the wrong type
            (
                "consult",
                json!({"question": 42}),
                "question: expected a string, got 42",
            ),
            (
                "consult",
                json!({"question": null}),
                "question: expected a string, got null",
            ),
            (
                "consult",
                json!({"question": "q", "model": ["a"]}),
                r#"model: expected a string, got ["a"]"#,
            ),
            (
                "permit",
                json!({"decision": "allow", "id": 7}),
                "id: expected a string, got 7",
            ),
            (
                "explore",
                json!({"paths": {"src": true}}),
                r#"paths: expected a string or a list of strings, got {"src":true}"#,
            ),
            (
                "review_diff",
                json!({"paths": ["a", 1]}),
                r#"paths: expected a string or a list of strings, got ["a",1]"#,
            ),
            // an argument the tool does not take
            (
                "permit",
                json!({"decision": "allow", "agents": "codex"}),
                "agents: unknown argument; permit takes decision, note, id, agent",
            ),
            (
                "reply",
                json!({"message": "x", "extra": 1}),
                "extra: unknown argument; reply takes message, model, effort, agents",
            ),
            (
                "reset",
                json!({"hard": true}),
                "hard: unknown argument; reset takes agents",
            ),
        ];
        for (tool, arguments, expected) in rows {
            assert_eq!(message(tool, arguments.clone()), *expected, "{tool} {arguments}");
        }
        let long = "x".repeat(500);
        let text = message("permit", json!({"decision": long}));
        assert!(text.chars().count() < 120 && text.ends_with('…'), "{text}");
        let error = parse_call("nope", None).expect_err("unknown tool");
        assert!(error.to_string().contains("consult, review_plan"), "{error}");
    }

    #[test]
    fn valid_arguments_still_parse() {
        assert_eq!(
            call("permit", json!({"decision": "deny", "id": "p3f9a"})),
            Ok(ToolCall::Permit(PermitArgs {
                decision: PermitDecision::Deny,
                note: None,
                id: Some("p3f9a".into()),
                agent: None
            }))
        );
        assert!(matches!(
            call("consult", json!({"question": "q", "context": null, "model": "gpt-5.5"})),
            Ok(ToolCall::Turn(TurnTool::Consult(_)))
        ));
    }

    #[test]
    fn every_tool_has_a_title_and_only_status_is_read_only() {
        for tool in ToolName::ALL {
            let hints = hints(tool);
            assert!(!hints.title.is_empty(), "{tool:?}");
            assert_eq!(hints.read_only == Some(true), tool == ToolName::Status, "{tool:?}");
        }
        for tool in [
            ToolName::Consult,
            ToolName::ReviewPlan,
            ToolName::ReviewDiff,
            ToolName::Brainstorm,
            ToolName::Explore,
            ToolName::Reply,
        ] {
            assert_eq!(hints(tool).destructive, Some(false), "{tool:?}");
        }
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
        assert_eq!(
            parse_call("reset", None),
            Ok(ToolCall::Reset(ResetArgs { agents: None }))
        );
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
        assert_eq!(names, ["agent", "decision", "id", "note"].into());
        for (_, _, schema) in &definitions[..6] {
            assert_eq!(
                schema["properties"]["agents"]["type"],
                json!(["array", "null"]),
                "every turn tool takes `agents`: {schema:?}"
            );
        }
        assert!(
            permit["properties"]["id"]["description"]
                .as_str()
                .is_some_and(|text| text.contains("🔐")),
            "{permit:?}"
        );
        let reset = &definitions[7].2;
        assert_eq!(reset["type"], json!("object"));
        assert!(reset["properties"]["agents"].is_object(), "{reset:?}");
    }

    #[test]
    fn a_council_choice_can_name_each_agents_model() {
        let choice = ModelChoice {
            model: Some("codex=gpt-5.5, Claude=opus".into()),
            effort: Some("high".into()),
        };
        assert_eq!(
            choice.for_agent("claude"),
            ModelChoice {
                model: Some("opus".into()),
                effort: Some("high".into())
            }
        );
        assert_eq!(choice.for_agent("codex").model.as_deref(), Some("gpt-5.5"));
        assert_eq!(choice.for_agent("gemini").model, None, "not named: unchanged");
        assert_eq!(ModelChoice::default().for_agent("codex"), ModelChoice::default());
    }

    #[test]
    fn agents_are_a_list_or_one_name() {
        let Ok(ToolCall::Turn(tool)) = call("consult", json!({"question": "q", "agents": ["codex", "claude"]})) else {
            panic!("parses");
        };
        assert_eq!(tool.agents(), Some(&["codex".to_owned(), "claude".to_owned()][..]));
        let Ok(ToolCall::Turn(tool)) = call("reply", json!({"message": "m", "agents": "claude"})) else {
            panic!("parses");
        };
        assert_eq!(tool.agents(), Some(&["claude".to_owned()][..]));
        let Ok(ToolCall::Turn(tool)) = call("explore", json!({"agents": []})) else {
            panic!("parses");
        };
        assert_eq!(tool.agents(), None, "an empty list is the default agent");
        assert_eq!(
            call("reset", json!({"agents": ["claude"]})),
            Ok(ToolCall::Reset(ResetArgs {
                agents: Some(vec!["claude".into()])
            }))
        );
    }
}
