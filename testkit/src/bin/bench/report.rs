//! The table the bench prints: one row per figure, each with what was
//! measured, its baseline from the same run, the budget, the verdict, the
//! Bun original's figure (quoted from issue 7 for figures 1–8; measured in
//! the same run for figure 9, when the original is given) and the machine's
//! load while the row was measured.

/// Whether a figure met its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Miss,
    /// No budget: shown for context.
    Info,
    /// The figure could not be measured.
    Error,
    /// The budget lies inside the measurement's 95% interval: this run
    /// cannot tell whether it is met.
    Unresolved,
}

impl Verdict {
    pub fn from(met: bool) -> Verdict {
        if met { Verdict::Pass } else { Verdict::Miss }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Miss => "MISS",
            Verdict::Info => "info",
            Verdict::Error => "ERROR",
            Verdict::Unresolved => "unresolved (budget inside the 95% interval)",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub id: &'static str,
    pub figure: String,
    pub measured: String,
    pub baseline: String,
    pub budget: &'static str,
    pub verdict: Verdict,
    pub bun: String,
    /// 1-minute load before → after the figure ran, and how busy the
    /// machine's CPUs were meanwhile.
    pub load: String,
}

impl Row {
    pub fn new(id: &'static str, figure: impl Into<String>) -> Row {
        Row {
            id,
            figure: figure.into(),
            measured: String::new(),
            baseline: "—".into(),
            budget: "—",
            verdict: Verdict::Info,
            bun: "—".into(),
            load: String::new(),
        }
    }

    pub fn measured(mut self, text: impl Into<String>) -> Row {
        self.measured = text.into();
        self
    }

    pub fn baseline(mut self, text: impl Into<String>) -> Row {
        self.baseline = text.into();
        self
    }

    /// Judges an estimate known only within `(low, high)` against an upper
    /// `limit`: met when the whole interval is under it, missed when the
    /// whole interval is over it, unresolved otherwise.
    pub fn budget_interval(mut self, budget: &'static str, (low, high): (f64, f64), limit: f64) -> Row {
        self.budget = budget;
        self.verdict = if high < limit {
            Verdict::Pass
        } else if low >= limit {
            Verdict::Miss
        } else {
            Verdict::Unresolved
        };
        self
    }

    pub fn budget(mut self, budget: &'static str, met: bool) -> Row {
        self.budget = budget;
        self.verdict = Verdict::from(met);
        self
    }

    pub fn bun(mut self, text: impl Into<String>) -> Row {
        self.bun = text.into();
        self
    }
}

/// Prints the rows as a Markdown table.
pub fn print(rows: &[Row]) {
    println!(
        "| # | figure | measured | baseline (same run) | budget | verdict | Bun original (issue 7; fig 9 measured in this run) | load 1m before→after; machine CPU during |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.id,
            cell(&row.figure),
            cell(&row.measured),
            cell(&row.baseline),
            cell(row.budget),
            row.verdict.label(),
            cell(&row.bun),
            row.load
        );
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
