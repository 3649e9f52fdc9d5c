//! The MCP server one connection talks to: the nine tools, each turned into
//! a command for the workspace's session and its outcome rendered as text.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, RequestId, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::daemon::Daemon;
use crate::flow::Responses;
use crate::progress;
use crate::session::{Command, TurnRequest, WorkspaceHandle};
use crate::tools::{self, ToolCall, TurnTool};
use crate::turn::{TurnOutcome, Waiter};
use crate::{prompts, render};
use codex_fusion_protocol::tools::ToolName;

const INSTRUCTIONS: &str = "codex-fusion lets you consult Codex (OpenAI) as a second, independent reviewer. \
Use consult, review_plan, review_diff, brainstorm or explore, then continue with reply until Codex's VERDICT \
line says CONSENSUS. Codex keeps its context per workspace across calls. When a result starts with \
`🔐 Codex paused`, decide with permit (allow or deny).";

/// One MCP connection's server: which workspace it serves and with which
/// settings.
#[derive(Clone)]
pub struct McpService {
    daemon: Arc<Daemon>,
    workspace: Arc<Path>,
    settings: Arc<Settings>,
    /// Variables for an agent if a call of this connection has to start it.
    agent_env: Arc<Vec<(String, String)>>,
    /// Fires when the client's side of the connection ends.
    client_gone: CancellationToken,
    /// When each response of this connection has been written.
    responses: Responses,
    /// Each agent this connection may consult, with its settings (its
    /// command, its policy), made once: the agents on offer, and the
    /// reviewer of a Codex host.
    agent_settings: Arc<Vec<(String, Arc<Settings>)>>,
}

/// What one agent's turn came to, with what its result text needs.
struct Member {
    agent: String,
    outcome: TurnOutcome,
}

impl McpService {
    pub fn new(
        daemon: Arc<Daemon>,
        workspace: Arc<Path>,
        settings: Settings,
        agent_env: Vec<(String, String)>,
        client_gone: CancellationToken,
        responses: Responses,
    ) -> McpService {
        // The workspace shows in `status` from its first connection on.
        daemon.session(&workspace, settings.default_agent());
        let mut agent_settings: Vec<(String, Arc<Settings>)> = settings
            .agents
            .iter()
            .map(|agent| {
                (
                    agent.name.clone(),
                    Arc::new(settings.with_command(&agent.name, agent.command.clone())),
                )
            })
            .collect();
        if let Some(fallback) = &settings.host_fallback
            && !agent_settings.iter().any(|(name, _)| *name == fallback.name)
        {
            // The reviewer of a Codex host, when the list offers only Codex.
            let fallback_settings = settings.with_command(&fallback.name, fallback.command.clone());
            agent_settings.push((fallback.name.clone(), Arc::new(fallback_settings)));
        }
        McpService {
            daemon,
            workspace,
            settings: Arc::new(settings),
            agent_env: Arc::new(agent_env),
            client_gone,
            responses,
            agent_settings: Arc::new(agent_settings),
        }
    }

    /// Agent `agent`'s actor for this workspace, asked for at each call: one
    /// that failed is replaced by the daemon.
    fn session(&self, agent: &str) -> WorkspaceHandle {
        self.daemon.session(&self.workspace, agent)
    }

    /// Who answers when a call names no agent: the first on offer, unless
    /// the MCP client is Codex itself (Codex CLI with codex-fusion as its MCP
    /// server), which is not its own reviewer.
    fn default_agent(&self, context: &RequestContext<RoleServer>) -> String {
        let host = context.peer.peer_info().map(|info| info.client_info.name.clone());
        default_agent_for(&self.settings, host.as_deref())
    }

    /// This connection's settings for `agent`, whose command they carry.
    fn settings_for(&self, agent: &str) -> Result<Arc<Settings>, ErrorData> {
        self.agent_settings
            .iter()
            .find(|(name, _)| name == agent)
            .map(|(_, settings)| settings.clone())
            .ok_or_else(|| not_on_offer(&self.settings, "agents", agent))
    }

    /// The agents a turn goes to: those it names (checked against the offer),
    /// else for `reply` those of the workspace's last turn, else the default.
    fn turn_agents(&self, tool: &TurnTool, context: &RequestContext<RoleServer>) -> Result<Vec<String>, ErrorData> {
        let named = match tool.agents() {
            Some(names) => names.to_vec(),
            None => {
                // Those of the last turn still on offer to this connection.
                let last: Vec<String> = match tool {
                    TurnTool::Reply(_) => self
                        .daemon
                        .last_agents(&self.workspace)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|agent| self.settings_for(agent).is_ok())
                        .collect(),
                    _ => Vec::new(),
                };
                if last.is_empty() {
                    vec![self.default_agent(context)]
                } else {
                    last
                }
            }
        };
        let mut agents: Vec<String> = Vec::new();
        for name in named {
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() {
                return Err(ErrorData::invalid_params("agents: an empty name", None));
            }
            self.settings_for(&name)?;
            if !agents.contains(&name) {
                agents.push(name);
            }
        }
        Ok(agents)
    }

    async fn run_tool(&self, call: ToolCall, context: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        match call {
            ToolCall::Turn(tool) => {
                let agents = self.turn_agents(&tool, &context)?;
                self.daemon.set_last_agents(&self.workspace, &agents);
                let prompt = prompts::build(&tool, &self.workspace);
                let name = tool.name();
                let choice = tool.choice();
                let make = |agent: &str| -> Result<_, ErrorData> {
                    let settings = self.settings_for(agent)?;
                    let prompt = prompt.clone();
                    let choice = choice.for_agent(agent);
                    let agent_env = self.agent_env.as_ref().clone();
                    Ok(move |waiter| {
                        Command::Turn(TurnRequest {
                            tool: name,
                            prompt,
                            choice,
                            settings,
                            agent_env,
                            waiter,
                        })
                    })
                };
                if let [agent] = agents.as_slice() {
                    return self.wait_on_session(context, name, agent, make(agent)?).await;
                }
                let mut commands = Vec::new();
                for agent in &agents {
                    commands.push((agent.clone(), make(agent)?));
                }
                self.council(context, name, commands).await
            }
            ToolCall::Permit(args) => {
                let agent = match self.permit_target(&args, &context).await {
                    Ok(agent) => agent,
                    Err(refusal) => {
                        let limit = self.settings.max_result_chars;
                        return Ok(CallToolResult::error(vec![ContentBlock::text(render::fit(
                            refusal, limit,
                        ))]));
                    }
                };
                self.wait_on_session(context, ToolName::Permit.as_str(), &agent, |waiter| Command::Permit {
                    decision: args.decision,
                    note: args.note,
                    id: args.id,
                    waiter,
                })
                .await
            }
            ToolCall::Reset(args) => {
                let agents = match &args.agents {
                    Some(named) => {
                        let mut agents = Vec::new();
                        for name in named {
                            let name = name.trim().to_ascii_lowercase();
                            self.settings_for(&name)?;
                            agents.push(name);
                        }
                        agents
                    }
                    None => {
                        let mut agents = self.daemon.agents_of(&self.workspace);
                        let default = self.default_agent(&context);
                        if !agents.contains(&default) {
                            agents.push(default);
                        }
                        agents
                    }
                };
                let mut dropped = Vec::new();
                let mut had_none = Vec::new();
                for agent in &agents {
                    match self.session(agent).reset().await.map_err(internal)? {
                        true => dropped.push(agent.as_str()),
                        false => had_none.push(agent.as_str()),
                    }
                }
                Ok(CallToolResult::success(vec![ContentBlock::text(render::reset(
                    &dropped, &had_none,
                ))]))
            }
            ToolCall::Status => {
                let daemon = self.daemon.status(Some(&self.workspace)).await;
                let mut workspaces: Vec<_> = daemon
                    .workspaces
                    .iter()
                    .filter(|status| *status.workspace == *self.workspace)
                    .cloned()
                    .collect();
                if workspaces.is_empty() {
                    workspaces.push(
                        self.session(self.settings.default_agent())
                            .status()
                            .await
                            .map_err(internal)?,
                    );
                }
                let mut text = String::new();
                for (index, workspace) in workspaces.iter_mut().enumerate() {
                    // Show the settings of this connection, which the next call uses.
                    workspace.guardian = codex_fusion_protocol::control::GuardianFlags {
                        allow_external_reads: self.settings.policy.allow_external_reads,
                        allow_writes: self.settings.policy.allow_writes,
                        allow_commands: self.settings.policy.allow_commands,
                    };
                    if index > 0 {
                        text.push_str("\n\n");
                        text.push_str(&render::member_heading(workspace.agent_name()));
                        text.push('\n');
                    }
                    text.push_str(&render::status(&daemon, workspace));
                }
                Ok(CallToolResult::success(vec![ContentBlock::text(render::fit(
                    text,
                    self.settings.max_result_chars,
                ))]))
            }
        }
    }

    /// Which agent's pause a `permit` answers: the one it names, else the
    /// one whose pause has its `id`, else the only one paused. With several
    /// paused and nothing to tell them apart, the text says how to choose.
    async fn permit_target(
        &self,
        args: &crate::tools::PermitArgs,
        context: &RequestContext<RoleServer>,
    ) -> Result<String, String> {
        if let Some(agent) = &args.agent {
            let agent = agent.trim().to_ascii_lowercase();
            if self.settings_for(&agent).is_err() && !self.daemon.agents_of(&self.workspace).contains(&agent) {
                return Err(not_on_offer(&self.settings, "agent", &agent).message.to_string());
            }
            return Ok(agent);
        }
        let mut paused = Vec::new();
        for (agent, handle) in self.daemon.sessions_of(&self.workspace) {
            if let Ok(status) = handle.status().await
                && let Some(id) = status.pause_id
            {
                paused.push((agent, id, status.pending_permission.unwrap_or_default()));
            }
        }
        if let Some(asked) = args.id.as_deref().map(str::trim)
            && let Some((agent, _, _)) = paused.iter().find(|(_, id, _)| id == asked)
        {
            return Ok(agent.clone());
        }
        match paused.as_slice() {
            [] => Ok(self
                .daemon
                .last_agents(&self.workspace)
                .and_then(|last| last.into_iter().next())
                .unwrap_or_else(|| self.default_agent(context))),
            [(agent, _, _)] => Ok(agent.clone()),
            several => {
                let listed: Vec<String> = several
                    .iter()
                    .map(|(agent, id, what)| format!("{agent} (pause {id}: {what})"))
                    .collect();
                Err(format!(
                    "Several agents are paused here: {}. Nothing was decided. Call `permit` again with `agent` (or the pause's `id`) to say which one this answers.",
                    listed.join("; ")
                ))
            }
        }
    }

    /// Sends the command built by `make` to agent `agent`'s actor and waits
    /// for its outcome, forwarding progress, and cancelling the call if the
    /// client does. `tool` names the call in the recent answers.
    async fn wait_on_session(
        &self,
        context: RequestContext<RoleServer>,
        tool: &'static str,
        agent: &str,
        make: impl FnOnce(Waiter) -> Command,
    ) -> Result<CallToolResult, ErrorData> {
        let call = self.daemon.next_call_id();
        let token = context.meta.get_progress_token();
        let (sink, forwarder) = progress::start(context.peer.clone(), token);
        let (waiter, outcome) = Waiter::new(call, sink);
        let session = self.session(agent);
        session.send(make(waiter)).await.map_err(internal)?;
        tokio::select! {
            outcome = outcome => {
                // A pause nobody can see would park the workspace for good:
                // if the client left before it arrived, drop that turn.
                if matches!(outcome, Ok(TurnOutcome::Paused(_)))
                    && (self.client_gone.is_cancelled() || context.ct.is_cancelled())
                {
                    forwarder.abort().await;
                    session.try_send(Command::Cancel { call });
                    return Err(ErrorData::internal_error("the client left", None));
                }
                // All progress goes out before the result, and none after it.
                forwarder.finish().await;
                match outcome {
                    Ok(TurnOutcome::Invalid(message)) => Err(ErrorData::invalid_params(message, None)),
                    Ok(outcome) => Ok(self
                        .result_of(agent, tool, in_agents_outcome(agent, outcome), &context.id)
                        .await),
                    Err(_) => Err(internal(session.gone())),
                }
            }
            _ = self.client_gone.cancelled() => {
                forwarder.abort().await;
                session.try_send(Command::Cancel { call });
                Err(ErrorData::internal_error("the client left", None))
            }
            _ = context.ct.cancelled() => {
                forwarder.abort().await;
                session.try_send(Command::Cancel { call });
                // rmcp drops the response of a cancelled request; this value
                // never reaches the client.
                Err(ErrorData::internal_error("cancelled by the client", None))
            }
        }
    }

    /// A council: the same turn to every agent of `commands` at once, each
    /// on its own session; one result with a section per agent (its answer,
    /// its pause or its failure), a tally and one footer.
    async fn council<F>(
        &self,
        context: RequestContext<RoleServer>,
        tool: &'static str,
        commands: Vec<(String, F)>,
    ) -> Result<CallToolResult, ErrorData>
    where
        F: FnOnce(Waiter) -> Command,
    {
        let started = std::time::Instant::now();
        let token = context.meta.get_progress_token();
        let (sink, forwarder) = progress::start(context.peer.clone(), token);
        let mut waiting = Vec::new();
        for (agent, make) in commands {
            let call = self.daemon.next_call_id();
            let (waiter, outcome) = Waiter::new(call, sink.labelled(&agent));
            let session = self.session(&agent);
            let outcome = match session.send(make(waiter)).await {
                Ok(()) => Some(outcome),
                Err(gone) => {
                    waiting.push((agent, session, call, None, Some(gone.to_string())));
                    continue;
                }
            };
            waiting.push((agent, session, call, outcome, None));
        }
        drop(sink);
        let cancel_all = |waiting: &[(String, WorkspaceHandle, u64, _, _)]| {
            for (_, session, call, _, _) in waiting {
                session.try_send(Command::Cancel { call: *call });
            }
        };
        let receivers: Vec<_> = waiting
            .iter_mut()
            .map(|(_, session, _, outcome, early)| {
                let outcome = outcome.take();
                let early = early.take();
                let session = session.clone();
                async move {
                    match (outcome, early) {
                        (Some(outcome), _) => outcome
                            .await
                            .unwrap_or_else(|_| TurnOutcome::Failed(session.gone().to_string())),
                        (None, Some(message)) => TurnOutcome::Failed(message),
                        (None, None) => TurnOutcome::Failed("the turn was not sent".to_owned()),
                    }
                }
            })
            .collect();
        let outcomes = tokio::select! {
            outcomes = futures::future::join_all(receivers) => outcomes,
            _ = self.client_gone.cancelled() => {
                forwarder.abort().await;
                cancel_all(&waiting);
                return Err(ErrorData::internal_error("the client left", None));
            }
            _ = context.ct.cancelled() => {
                forwarder.abort().await;
                cancel_all(&waiting);
                return Err(ErrorData::internal_error("cancelled by the client", None));
            }
        };
        if outcomes.iter().any(|outcome| matches!(outcome, TurnOutcome::Paused(_)))
            && (self.client_gone.is_cancelled() || context.ct.is_cancelled())
        {
            forwarder.abort().await;
            cancel_all(&waiting);
            return Err(ErrorData::internal_error("the client left", None));
        }
        forwarder.finish().await;
        let members: Vec<Member> = waiting
            .into_iter()
            .zip(outcomes)
            .map(|((agent, ..), outcome)| Member {
                outcome: in_agents_outcome(&agent, outcome),
                agent,
            })
            .collect();
        Ok(self.council_result(tool, members, started.elapsed(), &context.id).await)
    }

    /// The council's result within the result budget, shared fairly; each
    /// member's whole outcome is kept in the recent answers, and a cut one
    /// names its file.
    async fn council_result(
        &self,
        tool: &str,
        members: Vec<Member>,
        elapsed: std::time::Duration,
        request: &RequestId,
    ) -> CallToolResult {
        let limit = self.settings.max_result_chars;
        let standings: Vec<render::Standing> = members.iter().map(|member| standing(&member.outcome)).collect();
        let tally = render::tally(&standings);
        let footer = render::council_footer(
            elapsed,
            &members
                .iter()
                .zip(&standings)
                .map(|(member, standing)| {
                    let answer = match &member.outcome {
                        TurnOutcome::Answer(answer) => Some(answer),
                        _ => None,
                    };
                    (member.agent.as_str(), answer, *standing)
                })
                .collect::<Vec<_>>(),
        );
        let headings: Vec<String> = members
            .iter()
            .map(|member| render::member_heading(&member.agent))
            .collect();
        // Each section is its heading, a line break, the body and a blank line.
        let overhead = headings.iter().map(|heading| render::cost(heading) + 3).sum::<usize>()
            + render::cost(&tally)
            + render::cost(&footer)
            + 2;
        let wholes: Vec<String> = members.iter().map(|member| member_text(&member.outcome)).collect();
        let shares = render::fair_shares(
            &wholes.iter().map(|whole| render::cost(whole)).collect::<Vec<_>>(),
            limit.saturating_sub(overhead),
        );
        let mut text = String::new();
        let mut first_pause = None;
        let mut all_failed = true;
        for (((member, whole), share), heading) in members.iter().zip(wholes).zip(shares).zip(&headings) {
            let body = self
                .member_body(&member.agent, tool, &member.outcome, whole, share, request)
                .await;
            if let TurnOutcome::Paused(pause) = &member.outcome
                && first_pause.is_none()
            {
                first_pause = Some(pause.clone());
            }
            all_failed &= matches!(
                member.outcome,
                TurnOutcome::Failed(_) | TurnOutcome::Refused(_) | TurnOutcome::Invalid(_)
            );
            text.push_str(heading);
            text.push('\n');
            text.push_str(body.trim_end());
            text.push_str("\n\n");
        }
        text.push_str(&tally);
        text.push('\n');
        text.push_str(&footer);
        let text = render::fit(text, limit);
        let mut result = if all_failed {
            CallToolResult::error(vec![ContentBlock::text(text)])
        } else {
            CallToolResult::success(vec![ContentBlock::text(text)])
        };
        if let Some(pause) = first_pause {
            result.meta = Some(pause_meta(&pause));
        }
        result
    }

    /// One council member's section body within `share`, its outcome kept
    /// whole in the recent answers first.
    async fn member_body(
        &self,
        agent: &str,
        tool: &str,
        outcome: &TurnOutcome,
        whole: String,
        share: usize,
        request: &RequestId,
    ) -> String {
        if render::cost(&whole) <= share {
            self.keep_outcome(agent, tool, outcome, None, request).await;
            return whole;
        }
        let kind = if matches!(outcome, TurnOutcome::Paused(_)) {
            "pauses"
        } else {
            "answers"
        };
        let saved = self.keep_outcome(agent, tool, outcome, Some(kind), request).await;
        match outcome {
            TurnOutcome::Answer(answer) => render::member_answer_within(answer, share, saved.as_deref()),
            TurnOutcome::Paused(pause) => render::pause_within(pause, share, saved.as_deref()),
            _ => render::fit(whole, share),
        }
    }

    /// Keeps `outcome` whole in the recent answers. Shown whole (`cut` is
    /// `None`), it is kept once the response to `request` has gone out;
    /// cut, it is kept first, marked cut, and the file that holds it whole
    /// is returned: the kept one, or one saved on its own under
    /// `state_dir/<cut>/` when it could not be kept.
    async fn keep_outcome(
        &self,
        agent: &str,
        tool: &str,
        outcome: &TurnOutcome,
        cut: Option<&str>,
        request: &RequestId,
    ) -> Option<PathBuf> {
        let recent = &self.daemon.recent;
        let text = kept_text(outcome);
        let entry = recent.entry(&self.workspace, agent, tool, outcome, &text);
        let Some(kind) = cut else {
            if let Some(entry) = entry {
                let sent = self.responses.sent(request);
                recent
                    .keep_once_sent(entry, sent, &self.daemon.shutdown, &self.daemon.tasks)
                    .await;
            }
            return None;
        };
        let kept = match entry {
            Some(mut entry) => {
                entry.record.cut = true;
                recent.keep(entry).await.map(|record| record.file)
            }
            None => None,
        };
        kept.or_else(|| save_private(&self.daemon.state_dir, kind, &text))
    }
}

/// The default agent for a connection whose MCP client calls itself
/// `host`: the first on offer, except for a Codex host, which gets the
/// first other agent on offer, else Claude.
fn default_agent_for(settings: &Settings, host: Option<&str>) -> String {
    if !host.is_some_and(is_codex_host) {
        return settings.default_agent().to_owned();
    }
    settings
        .agents
        .iter()
        .map(|agent| agent.name.as_str())
        .find(|name| *name != codex_fusion_protocol::agents::DEFAULT_AGENT)
        .unwrap_or("claude")
        .to_owned()
}

/// Whether an MCP client's `clientInfo.name` is Codex's (Codex CLI calls
/// its MCP client `codex-mcp-client`).
fn is_codex_host(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    name == "codex"
        || name.starts_with("codex-mcp-client")
        || name.starts_with("codex-cli")
        || name.starts_with("codex_cli")
}

/// The error for an agent name that is not on offer.
fn not_on_offer(settings: &Settings, argument: &str, agent: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!(
            "{argument}: `{agent}` is not on offer; the agents on offer are {} (set {} to offer more)",
            settings.offered_names(),
            codex_fusion_protocol::agents::AGENTS_ENV
        ),
        None,
    )
}

/// The daemon's words about Codex said of agent `agent`: its own name, and
/// its own way to sign in.
fn in_agents_words(agent: &str, text: &str) -> String {
    use codex_fusion_protocol::agents;
    if agent == agents::DEFAULT_AGENT {
        return text.to_owned();
    }
    let who = agents::display_name(agent);
    if text.starts_with("Codex is not signed in") {
        let said = text
            .split_once("Agent said: ")
            .map(|(_, said)| said)
            .unwrap_or_default();
        let how = match agent {
            "claude" => {
                "set ANTHROPIC_API_KEY in the environment of the MCP server or the daemon, or sign in with `claude`"
            }
            "gemini" => {
                "set GEMINI_API_KEY in the environment of the MCP server or the daemon, or sign in with `gemini`"
            }
            _ => "give it its credentials in its command (`NAME=value` words of its CODEX_FUSION_AGENT_ variable)",
        };
        return format!("{who} is not signed in: {how}, then call again. Agent said: {said}");
    }
    text.replace("Codex", &who)
}

/// How a member's turn stands in the tally.
fn standing(outcome: &TurnOutcome) -> render::Standing {
    match outcome {
        TurnOutcome::Answer(answer) => match &answer.verdict {
            Some(crate::prompts::Verdict::Consensus(_)) => render::Standing::Consensus,
            Some(crate::prompts::Verdict::Open(_)) => render::Standing::Open,
            None => render::Standing::NoVerdict,
        },
        TurnOutcome::Paused(_) => render::Standing::Paused,
        TurnOutcome::Failed(_) | TurnOutcome::Refused(_) | TurnOutcome::Invalid(_) => render::Standing::Failed,
    }
}

/// A member's whole section body: its answer (the council's footer has the
/// rest), its 🔐, or why it failed.
fn member_text(outcome: &TurnOutcome) -> String {
    match outcome {
        TurnOutcome::Answer(answer) => answer.text.trim_end().to_owned(),
        TurnOutcome::Paused(pause) => render::pause(pause),
        TurnOutcome::Failed(message) | TurnOutcome::Refused(message) => format!("⚠ {message}"),
        TurnOutcome::Invalid(message) => format!("⚠ invalid: {message}"),
    }
}

/// `outcome` with the daemon's words about Codex said of agent `agent`.
fn in_agents_outcome(agent: &str, outcome: TurnOutcome) -> TurnOutcome {
    match outcome {
        TurnOutcome::Failed(message) => TurnOutcome::Failed(in_agents_words(agent, &message)),
        TurnOutcome::Refused(message) => TurnOutcome::Refused(in_agents_words(agent, &message)),
        TurnOutcome::Answer(mut answer) => {
            for note in &mut answer.notes {
                *note = in_agents_words(agent, note);
            }
            TurnOutcome::Answer(answer)
        }
        other => other,
    }
}

impl McpService {
    /// The tool result of agent `agent`'s turn; no result exceeds the
    /// result budget. The whole outcome is kept in the recent answers
    /// first: a client that puts a long call in the background may never
    /// show it (`codex-fusion log` then does).
    async fn result_of(&self, agent: &str, tool: &str, outcome: TurnOutcome, request: &RequestId) -> CallToolResult {
        let limit = self.settings.max_result_chars;
        match &outcome {
            TurnOutcome::Answer(answer) => {
                let whole = render::answer(answer);
                let text = if render::cost(&whole) <= limit {
                    self.keep_outcome(agent, tool, &outcome, None, request).await;
                    whole
                } else {
                    let saved = self.keep_outcome(agent, tool, &outcome, Some("answers"), request).await;
                    render::answer_within(answer, limit, saved.as_deref())
                };
                CallToolResult::success(vec![ContentBlock::text(text)])
            }
            TurnOutcome::Paused(pause) => {
                self.keep_outcome(agent, tool, &outcome, None, request).await;
                let whole = render::pause(pause);
                let text = if render::cost(&whole) <= limit {
                    whole
                } else {
                    // A command is never shown cut: what does not fit is
                    // saved whole and the pause names the file.
                    let saved = save_private(&self.daemon.state_dir, "pauses", &render::pause_to_save(pause));
                    render::pause_within(pause, limit, saved.as_deref())
                };
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.meta = Some(pause_meta(pause));
                result
            }
            TurnOutcome::Failed(message) | TurnOutcome::Refused(message) | TurnOutcome::Invalid(message) => {
                self.keep_outcome(agent, tool, &outcome, None, request).await;
                CallToolResult::error(vec![ContentBlock::text(render::fit(message.clone(), limit))])
            }
        }
    }
}

/// The whole text of `outcome` as the recent answers keep it.
fn kept_text(outcome: &TurnOutcome) -> String {
    match outcome {
        TurnOutcome::Answer(answer) => answer.text.clone(),
        TurnOutcome::Paused(pause) => render::pause_to_save(pause),
        TurnOutcome::Failed(message) | TurnOutcome::Refused(message) | TurnOutcome::Invalid(message) => message.clone(),
    }
}

/// The `_meta` marking a result as `pause` (its id and agent), which clients
/// read instead of the text.
fn pause_meta(pause: &crate::turn::Pause) -> rmcp::model::MetaObject {
    let mut meta = rmcp::model::MetaObject::default();
    codex_fusion_protocol::PauseMeta::new(pause.id.clone(), pause.agent.to_string()).insert_into(&mut meta.0);
    meta
}

/// Writes a text too long for a tool result (an answer, a pause) to
/// `state_dir/<kind>/<time>-<pid>-<n>.md`, private to the user (0600 in a
/// 0700 directory); its path.
fn save_private(state_dir: &Path, kind: &str, text: &str) -> Option<std::path::PathBuf> {
    use codex_fusion_protocol::private;
    use std::io::Write as _;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = state_dir.join(kind);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let sequence = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("{stamp}-{}-{sequence}.md", std::process::id()));
    let written = private::own_dir(&dir)
        .and_then(|()| private::open(&path, private::Access::CreateNew))
        .map_err(|error| error.to_string())
        .and_then(|mut file| {
            file.write_all(text.as_bytes())
                .map_err(|error| format!("{}: {error}", path.display()))
        });
    match written {
        Ok(()) => Some(path),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot save a long result");
            None
        }
    }
}

/// A tool's hints as MCP annotations; a hint left `None` is left out.
fn annotations(hints: tools::Hints) -> ToolAnnotations {
    let mut annotations = ToolAnnotations::with_title(hints.title);
    annotations.read_only_hint = hints.read_only;
    annotations.destructive_hint = hints.destructive;
    annotations.idempotent_hint = hints.idempotent;
    annotations
}

fn internal(error: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(error.to_string(), None)
}

impl ServerHandler for McpService {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "codex-fusion",
                codex_fusion_protocol::PACKAGE_VERSION,
            ))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        // The schemas are constants; generating them took most of a
        // tools/list round trip (docs/PERFORMANCE.md, figure 1).
        static TOOLS: std::sync::LazyLock<Vec<Tool>> = std::sync::LazyLock::new(|| {
            tools::definitions()
                .into_iter()
                .map(|(name, description, schema)| {
                    let tool = Tool::new(name, description, Arc::new(schema));
                    match codex_fusion_protocol::tools::ToolName::parse(name) {
                        Some(known) => {
                            let hints = tools::hints(known);
                            tool.with_title(hints.title).with_annotations(annotations(hints))
                        }
                        None => tool,
                    }
                })
                .collect()
        });
        Ok(ListToolsResult::with_all_items(TOOLS.clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = tools::parse_call(&request.name, request.arguments)
            .map_err(|error| ErrorData::invalid_params(error.to_string(), None))?;
        let span = tracing::info_span!("call", tool = %request.name, request_id = ?context.id);
        tracing::Instrument::instrument(self.run_tool(call, context), span)
            .await
            .map(CallToolResponse::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn another_agent_is_named_as_itself_and_told_how_to_sign_in() {
        let codex = "Codex is not signed in: run `codex login` in a terminal, or set OPENAI_API_KEY. Agent said: Authentication required";
        assert_eq!(in_agents_words("codex", codex), codex);
        let claude = in_agents_words("claude", codex);
        assert!(
            claude.starts_with("Claude is not signed in: set ANTHROPIC_API_KEY"),
            "{claude}"
        );
        assert!(claude.ends_with("Agent said: Authentication required"), "{claude}");
        assert!(!claude.contains("codex login"), "{claude}");
        assert_eq!(
            in_agents_words("gemini", "Codex is paused waiting for your decision on: x (pause p1)."),
            "Gemini is paused waiting for your decision on: x (pause p1)."
        );
        assert_eq!(
            default_agent_for(&Settings::default(), Some("codex-mcp-client")),
            "claude",
            "a Codex host gets Claude"
        );
        assert_eq!(default_agent_for(&Settings::default(), Some("claude-code")), "codex");
    }

    #[test]
    fn a_long_answer_is_saved_privately() {
        let temp = tempfile::tempdir().expect("tempdir");
        let path = save_private(temp.path(), "answers", "the whole answer").expect("saved");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "the whole answer");
        let mode = |path: &Path| std::fs::metadata(path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
    }

    /// Issue 13: an `answers` directory that belongs to another user (made
    /// ahead of the daemon, world-writable) was written into. Needs root.
    #[test]
    fn a_long_answer_is_never_saved_into_another_users_directory() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: needs root to chown a directory to another user");
            return;
        }
        let temp = tempfile::tempdir().expect("tempdir");
        let answers = temp.path().join("answers");
        std::fs::create_dir(&answers).expect("mkdir");
        std::fs::set_permissions(&answers, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        nix::unistd::chown(&answers, Some(nix::unistd::Uid::from_raw(65534)), None).expect("chown");
        assert_eq!(save_private(temp.path(), "answers", "the whole answer"), None);
        assert_eq!(std::fs::read_dir(&answers).expect("list").count(), 0);
    }
}
