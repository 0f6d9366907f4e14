//! `knockr routeros apply`: puts the rules of [`crate::routeros::rules`] on
//! a router over REST, or takes them out, and changes nothing when the
//! router already holds them as wanted (same rules, same order, same place).
//!
//! The decision is pure ([`plan`]: the wanted rules against the table the
//! router listed); [`apply`] only carries it out. The rules go where the
//! script puts them: the accepts before the anchor (`--place-before`'s rule,
//! else the default drop rule), else at the top of input, the dispatch first
//! in input, the knock chain at the end. It never logs; the caller prints
//! the [`Report`].

use std::time::Duration;

use tokio::time::Instant;

use crate::routeros::rest::{AddressList, FilterRule, RestError};
use crate::routeros::rules::{self, FamilyRules, Place, Rule};

/// What to make true on each router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// The tag's rules, per family, exactly these.
    Install(Vec<FamilyRules>),
    /// Nothing of the tag left in these families (`false`: IPv4, `true`: IPv6).
    Remove(Vec<bool>),
}

/// What one family's table needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The tagged rules are the wanted ones, in order and in place.
    AsWanted,
    /// Take out the tagged rules (`remove`, ids), then add the wanted ones.
    Replace {
        remove: Vec<String>,
        /// The anchor's id, if the table has one (untagged, in input).
        anchor: Option<String>,
        /// The first untagged input rule's id, if input has one.
        first_input: Option<String>,
    },
}

/// Why a family's rules cannot be put in place; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "no input rule is commented {0:?} (--place-before) under /{1} firewall filter: nothing was changed"
    )]
    MissingAnchor(String, &'static str),
}

fn family_name(ipv6: bool) -> &'static str {
    if ipv6 { "ipv6" } else { "ip" }
}

/// The wanted rules in the order the table ends up holding them after the
/// script: the dispatch, the accepts, then the knock chain.
fn table_order(rules: &[Rule]) -> Vec<&Rule> {
    let mut ordered: Vec<&Rule> = Vec::new();
    for place in [Place::Top, Place::BeforeAnchor, Place::End] {
        ordered.extend(rules.iter().filter(|r| r.place == place));
    }
    ordered
}

/// Whether the router's `have` is the wanted rule: every wanted field has
/// the wanted value and the rule is not disabled (fields the router adds
/// itself, like counters, do not count).
fn same(want: &Rule, have: &FilterRule) -> bool {
    have.get("disabled") != Some("true")
        && want
            .fields
            .iter()
            .all(|(key, value)| have.get(key) == Some(value.as_str()))
}

/// The rules of `table` whose comment carries `tag`, in table order.
fn tagged<'a>(tag: &str, table: &'a [FilterRule]) -> Vec<&'a FilterRule> {
    table
        .iter()
        .filter(|r| r.get("comment").is_some_and(|c| rules::is_tagged(tag, c)))
        .collect()
}

/// What `table` needs to hold `wanted` under `tag`.
pub fn plan(tag: &str, wanted: &FamilyRules, table: &[FilterRule]) -> Result<Plan, PlanError> {
    let is_ours = |r: &FilterRule| r.get("comment").is_some_and(|c| rules::is_tagged(tag, c));
    let input = |r: &&FilterRule| r.get("chain") == Some("input") && !is_ours(r);
    let anchor = table
        .iter()
        .filter(input)
        .find(|r| r.get("comment") == Some(wanted.anchor.as_str()));
    if wanted.anchor_required && anchor.is_none() {
        return Err(PlanError::MissingAnchor(
            wanted.anchor.clone(),
            family_name(wanted.ipv6),
        ));
    }
    let ours = tagged(tag, table);
    if in_place(tag, &wanted.rules, table, anchor.map(|a| a.id.as_str())) {
        return Ok(Plan::AsWanted);
    }
    Ok(Plan::Replace {
        remove: ours.iter().map(|r| r.id.clone()).collect(),
        anchor: anchor.map(|r| r.id.clone()),
        first_input: table.iter().find(input).map(|r| r.id.clone()),
    })
}

/// Whether the tagged rules of `table` are `rules`, in the order and the
/// places the script would give them.
fn in_place(tag: &str, rules: &[Rule], table: &[FilterRule], anchor: Option<&str>) -> bool {
    let order = table_order(rules);
    let ours = tagged(tag, table);
    if ours.is_empty()
        || ours.len() != order.len()
        || !order.iter().zip(&ours).all(|(w, h)| same(w, h))
    {
        return false;
    }
    // Another tag's dispatch and accepts are allowed in between: each
    // door's apply puts its own first, and they must not take turns.
    let view: Vec<&FilterRule> = table.iter().filter(|r| !foreign_door(tag, r)).collect();
    let position = |id: &str| view.iter().position(|r| r.id == id);
    let first_input = view.iter().position(|r| r.get("chain") == Some("input"));
    let dispatch = position(&ours[0].id);
    if dispatch.is_none() || dispatch != first_input {
        return false;
    }
    // The accepts: one block, right before the anchor, or right after the dispatch.
    let accepts: Vec<usize> = order
        .iter()
        .zip(&ours)
        .filter(|(w, _)| w.place == Place::BeforeAnchor)
        .filter_map(|(_, h)| position(&h.id))
        .collect();
    let contiguous = accepts.windows(2).all(|w| w[1] == w[0] + 1);
    let (Some(first), Some(last)) = (accepts.first(), accepts.last()) else {
        return contiguous;
    };
    contiguous
        && match anchor {
            Some(anchor) => position(anchor) == Some(last + 1),
            None => dispatch.map(|d| d + 1) == Some(*first),
        }
}

/// Whether `rule` is another tag's dispatch or accept: a rule the script
/// of another door puts at the same places as ours.
fn foreign_door(tag: &str, rule: &FilterRule) -> bool {
    let Some((other, what)) = rule.get("comment").and_then(|c| c.split_once(": ")) else {
        return false;
    };
    other != tag
        && rule.get("chain") == Some("input")
        && matches!(
            (rule.get("action"), what),
            (Some("jump"), "dispatch")
                | (Some("accept"), "accept knocked tcp" | "accept knocked udp")
        )
}

/// What was done (or, in a dry run, would be) to one family of one router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub ipv6: bool,
    /// Rules taken out, rules added, stage or blocked list entries cleared.
    pub removed: usize,
    pub added: usize,
    pub cleared: usize,
    /// Nothing was changed: the counts are what would be.
    pub dry_run: bool,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{} firewall filter: ", family_name(self.ipv6))?;
        let mut parts = Vec::new();
        let (remove, add) = if self.dry_run {
            ("would remove", "would add")
        } else {
            ("removed", "added")
        };
        if self.removed > 0 {
            parts.push(format!("{remove} {} rules", self.removed));
        }
        if self.added > 0 {
            parts.push(format!("{add} {} rules", self.added));
        }
        if self.cleared > 0 {
            parts.push(format!(
                "cleared {} stage or blocked list entries",
                self.cleared
            ));
        }
        if parts.is_empty() {
            f.write_str("already as wanted")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// Why a router is not in the wanted state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Rest(#[from] RestError),
}

/// Makes `goal` true on the router `client` talks to (with `dry_run`, only
/// says what it would change). Families are done one after the other; the
/// first failure stops this router.
pub async fn apply(
    client: &AddressList,
    tag: &str,
    goal: &Goal,
    dry_run: bool,
    retry: Duration,
) -> Result<Vec<Report>, ApplyError> {
    // Each request is retried for `retry`, however many came before it.
    let deadline = || Instant::now() + retry;
    let mut reports = Vec::new();
    match goal {
        Goal::Install(families) => {
            // Every family is planned before anything changes, so a missing
            // anchor under /ipv6 leaves /ip as it was too.
            let mut plans = Vec::new();
            for wanted in families {
                let table = client.filter_rules(wanted.ipv6, deadline()).await?;
                plans.push(plan(tag, wanted, &table)?);
            }
            for (wanted, plan) in families.iter().zip(plans) {
                let mut report = Report {
                    ipv6: wanted.ipv6,
                    removed: 0,
                    added: 0,
                    cleared: 0,
                    dry_run,
                };
                if let Plan::Replace {
                    remove,
                    anchor,
                    first_input,
                } = plan
                {
                    report.removed = remove.len();
                    report.added = wanted.rules.len();
                    if !dry_run {
                        for id in &remove {
                            client
                                .delete_item(wanted.ipv6, "filter", id, deadline())
                                .await?;
                        }
                        report.cleared = clear_lists(client, tag, wanted.ipv6, deadline).await?;
                        add(client, wanted, anchor, first_input, deadline).await?;
                    }
                }
                reports.push(report);
            }
        }
        Goal::Remove(families) => {
            for &ipv6 in families {
                let table = client.filter_rules(ipv6, deadline()).await?;
                let ours = tagged(tag, &table);
                let mut report = Report {
                    ipv6,
                    removed: ours.len(),
                    added: 0,
                    cleared: 0,
                    dry_run,
                };
                if !dry_run {
                    for rule in ours {
                        client
                            .delete_item(ipv6, "filter", &rule.id, deadline())
                            .await?;
                    }
                    report.cleared = clear_lists(client, tag, ipv6, deadline).await?;
                }
                reports.push(report);
            }
        }
    }
    Ok(reports)
}

/// Adds `wanted`'s rules where the script puts them, in the script's order.
async fn add(
    client: &AddressList,
    wanted: &FamilyRules,
    anchor: Option<String>,
    first_input: Option<String>,
    deadline: impl Fn() -> Instant,
) -> Result<(), RestError> {
    let mut first_accept: Option<String> = None;
    for rule in &wanted.rules {
        let before = match rule.place {
            Place::BeforeAnchor => anchor.clone().or_else(|| first_input.clone()),
            // The first input rule now: the one that was first, unless the
            // accepts went above it (no anchor, or the anchor was first).
            Place::Top => match (&anchor, &first_input) {
                (Some(anchor), Some(first)) if anchor != first => Some(first.clone()),
                _ => first_accept.clone().or_else(|| first_input.clone()),
            },
            Place::End => None,
        };
        let id = client
            .add_filter_rule(wanted.ipv6, &rule.fields, before.as_deref(), deadline())
            .await?;
        if rule.place == Place::BeforeAnchor && first_accept.is_none() {
            first_accept = Some(id);
        }
    }
    Ok(())
}

/// Deletes the entries of the tag's stage and blocked lists, as the script's
/// removal does: a new set of rules starts from no progress.
async fn clear_lists(
    client: &AddressList,
    tag: &str,
    ipv6: bool,
    deadline: impl Fn() -> Instant,
) -> Result<usize, RestError> {
    let entries = client.list_entries(ipv6, deadline()).await?;
    let mut cleared = 0;
    for (id, list) in entries {
        if rules::is_stage_list(tag, &list) {
            client
                .delete_item(ipv6, "address-list", &id, deadline())
                .await?;
            cleared += 1;
        }
    }
    Ok(cleared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::knock::{Proto, parse_list};
    use crate::routeros::rules::{RuleSpec, parse_protect};

    fn wanted(place_before: Option<&str>) -> FamilyRules {
        let spec = RuleSpec {
            tag: "door".into(),
            sequence: parse_list("7000,8000:udp", Proto::Tcp).unwrap(),
            wan: "WAN".into(),
            protect: vec![
                parse_protect("22").unwrap(),
                parse_protect("53:udp").unwrap(),
            ],
            list: "knocked".into(),
            timeout: Duration::from_secs(3600),
            stage_timeout: Duration::from_secs(10),
            delay: Duration::from_millis(200),
            block_for: Duration::from_secs(60),
            place_before: place_before.map(String::from),
            allow_weak: false,
            ipv4: true,
            ipv6: false,
        };
        rules::rules(&spec).unwrap().0.remove(0)
    }

    fn rule(id: u32, fields: &[(&str, &str)]) -> FilterRule {
        FilterRule {
            id: format!("*{id:X}"),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn defconf() -> Vec<FilterRule> {
        vec![
            rule(
                1,
                &[
                    ("chain", "input"),
                    ("comment", "defconf: accept established"),
                ],
            ),
            rule(
                2,
                &[
                    ("chain", "input"),
                    ("comment", "defconf: drop all not coming from LAN"),
                ],
            ),
        ]
    }

    /// The table the script leaves: the dispatch first, the accepts before the anchor.
    fn installed(wanted: &FamilyRules, mut table: Vec<FilterRule>, at: usize) -> Vec<FilterRule> {
        let as_rule = |i: usize, r: &Rule| FilterRule {
            id: format!("*{:X}", 100 + i),
            fields: r
                .fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        let mut accepts = Vec::new();
        let mut chain = Vec::new();
        let mut dispatch = None;
        for (i, r) in wanted.rules.iter().enumerate() {
            match r.place {
                Place::BeforeAnchor => accepts.push(as_rule(i, r)),
                Place::Top => dispatch = Some(as_rule(i, r)),
                Place::End => chain.push(as_rule(i, r)),
            }
        }
        for (k, accept) in accepts.into_iter().enumerate() {
            table.insert(at + k, accept);
        }
        table.insert(0, dispatch.unwrap());
        table.extend(chain);
        table
    }

    #[test]
    fn rules_in_place_are_left_alone_and_anything_else_is_replaced() {
        let wanted = wanted(None);
        let table = installed(&wanted, defconf(), 1);
        assert_eq!(plan("door", &wanted, &table), Ok(Plan::AsWanted));
        // An accept after the drop is misplaced.
        let late = installed(&wanted, defconf(), 2);
        let Ok(Plan::Replace {
            remove,
            anchor,
            first_input,
        }) = plan("door", &wanted, &late)
        else {
            panic!("a misplaced accept is replaced");
        };
        assert_eq!(remove.len(), wanted.rules.len());
        assert_eq!(anchor.as_deref(), Some("*2"));
        assert_eq!(first_input.as_deref(), Some("*1"));
        // A changed field or a disabled rule is replaced too.
        let mut changed = table.clone();
        changed[5].fields.insert("dst-port".into(), "7001".into());
        assert!(matches!(
            plan("door", &wanted, &changed),
            Ok(Plan::Replace { .. })
        ));
        let mut off = table.clone();
        off[0].fields.insert("disabled".into(), "true".into());
        assert!(matches!(
            plan("door", &wanted, &off),
            Ok(Plan::Replace { .. })
        ));
        // Without an anchor the accepts sit right after the dispatch.
        let bare = installed(&wanted, Vec::new(), 0);
        assert_eq!(plan("door", &wanted, &bare), Ok(Plan::AsWanted));
        assert!(matches!(
            plan("door", &wanted, &[]),
            Ok(Plan::Replace { remove, anchor: None, first_input: None }) if remove.is_empty()
        ));
    }

    #[test]
    fn a_missing_place_before_rule_is_an_error_and_another_tag_is_not_touched() {
        let wanted = wanted(Some("my: drop"));
        assert_eq!(
            plan("door", &wanted, &defconf()),
            Err(PlanError::MissingAnchor("my: drop".into(), "ip"))
        );
        let mut table = defconf();
        table.push(rule(
            9,
            &[("chain", "input"), ("comment", "door2: dispatch")],
        ));
        table.push(rule(10, &[("chain", "input"), ("comment", "my: drop")]));
        let Ok(Plan::Replace { remove, anchor, .. }) = plan("door", &wanted, &table) else {
            panic!();
        };
        assert!(remove.is_empty(), "door2's rules are not door's");
        assert_eq!(anchor.as_deref(), Some("*A"));
    }

    #[test]
    fn the_report_says_what_changed() {
        let mut report = Report {
            ipv6: false,
            removed: 0,
            added: 14,
            cleared: 0,
            dry_run: false,
        };
        assert_eq!(report.to_string(), "/ip firewall filter: added 14 rules");
        report.dry_run = true;
        report.removed = 14;
        assert_eq!(
            report.to_string(),
            "/ip firewall filter: would remove 14 rules, would add 14 rules"
        );
        let same = Report {
            ipv6: true,
            removed: 0,
            added: 0,
            cleared: 0,
            dry_run: false,
        };
        assert_eq!(same.to_string(), "/ipv6 firewall filter: already as wanted");
    }
}
