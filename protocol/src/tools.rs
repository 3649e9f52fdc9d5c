//! The names of the nine MCP tools, in SPEC order: the daemon serves them
//! under these names and the CLI's `ask` calls them by them.

/// One of the nine MCP tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ToolName {
    Consult,
    ReviewPlan,
    ReviewDiff,
    Brainstorm,
    Explore,
    Reply,
    Permit,
    Reset,
    Status,
}

impl ToolName {
    /// Every tool, in SPEC order (the order `tools/list` shows them in).
    pub const ALL: [ToolName; 9] = [
        ToolName::Consult,
        ToolName::ReviewPlan,
        ToolName::ReviewDiff,
        ToolName::Brainstorm,
        ToolName::Explore,
        ToolName::Reply,
        ToolName::Permit,
        ToolName::Reset,
        ToolName::Status,
    ];

    /// The name MCP knows the tool by.
    pub const fn as_str(self) -> &'static str {
        match self {
            ToolName::Consult => "consult",
            ToolName::ReviewPlan => "review_plan",
            ToolName::ReviewDiff => "review_diff",
            ToolName::Brainstorm => "brainstorm",
            ToolName::Explore => "explore",
            ToolName::Reply => "reply",
            ToolName::Permit => "permit",
            ToolName::Reset => "reset",
            ToolName::Status => "status",
        }
    }

    /// The tool MCP knows as `name`, if any.
    pub fn parse(name: &str) -> Option<ToolName> {
        ToolName::ALL.into_iter().find(|tool| tool.as_str() == name)
    }

    /// Every name, in SPEC order, for messages (`consult, review_plan, …`).
    pub fn list() -> String {
        ToolName::ALL.map(ToolName::as_str).join(", ")
    }
}

impl std::fmt::Display for ToolName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_tool() {
        for tool in ToolName::ALL {
            assert_eq!(ToolName::parse(tool.as_str()), Some(tool));
        }
        assert_eq!(ToolName::parse("review-plan"), None, "MCP names are exact");
        assert_eq!(
            ToolName::list(),
            "consult, review_plan, review_diff, brainstorm, explore, reply, permit, reset, status"
        );
    }
}
