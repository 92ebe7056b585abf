//! The status page `tillflow run` serves at `/`: every pipeline with its
//! last delivery, lag, events delivered by name, skips by reason, dead
//! letters by reason, and the reconciliation chart — orders per local day
//! read from the source, delivered and skipped, in the time zone the page's
//! form asks for (the data of `tillflow status` and `tillflow report`,
//! drawn). Server-rendered HTML and inline SVG: no script, no external
//! asset, so it works offline. It shows no email (masked wherever a text
//! could hold one) and no secret (no checkpoint, no config value).

use crate::config::Config;
use crate::exit::Failure;
use crate::registry;
use crate::report::{DayRow, day_rows, start_of};
use std::collections::BTreeMap;
use std::fmt::Write;
use tillflow_core::state::OutcomeKind;
use tillflow_core::{EventKind, StateStore};

/// Days the chart shows, ending today.
pub const CHART_DAYS: u32 = 14;
/// Dead letters read per pipeline to group by reason.
const LETTERS_READ: u32 = 500;

/// `text` for HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` with anything shaped like an email address masked (`c***@example.com`).
pub fn without_emails(text: &str) -> String {
    let looks_like_email =
        |word: &str| word.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let trimmed = word.trim_matches(|c: char| !c.is_alphanumeric());
        if looks_like_email(trimmed) {
            out.push_str(&word.replace(trimmed, &tillflow_http::redact::email(trimmed)));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || c == ',' || c == ';' || c == '(' || c == ')' || c == '"' || c == '\'' {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The reconciliation rows of `pipeline` for the chart's days in `zone`.
async fn chart_rows(state: &dyn StateStore, pipeline: &str, zone: &jiff::tz::TimeZone) -> Result<Vec<DayRow>, Failure> {
    let today = jiff::Timestamp::now().to_zoned(zone.clone()).date();
    let first = today.checked_sub(jiff::Span::new().days(i64::from(CHART_DAYS) - 1)).unwrap_or(today);
    let since = start_of(zone, first);
    let read = state.orders_read_times(pipeline, since).await.map_err(Failure::pipeline)?;
    let times = |outcome| state.event_times(pipeline, EventKind::Placed, outcome, since);
    let delivered = times(OutcomeKind::Delivered).await.map_err(Failure::pipeline)?;
    let skipped = times(OutcomeKind::Skipped).await.map_err(Failure::pipeline)?;
    Ok(day_rows(zone, today, CHART_DAYS, &read, &delivered, &skipped))
}

/// The chart: one group of three bars (read, delivered, skipped) per day.
fn chart(rows: &[DayRow]) -> String {
    const BAR: usize = 10;
    const GROUP: usize = 3 * BAR + 12;
    const HEIGHT: usize = 140;
    let top = rows.iter().map(|row| row.read.max(row.delivered).max(row.skipped)).max().unwrap_or(0).max(1);
    let height = |count: u64| (count as usize * HEIGHT).div_ceil(top as usize);
    let width = rows.len() * GROUP + 10;
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" width=\"{width}\" height=\"{}\" viewBox=\"0 0 {width} {}\">",
        HEIGHT + 40,
        HEIGHT + 40
    );
    for (index, row) in rows.iter().enumerate() {
        let x = 10 + index * GROUP;
        let _ = write!(
            svg,
            "<g class=\"day\" data-day=\"{}\" data-read=\"{}\" data-delivered=\"{}\" data-skipped=\"{}\">\
             <title>{}: read {}, delivered {}, skipped {}</title>",
            row.day, row.read, row.delivered, row.skipped, row.day, row.read, row.delivered, row.skipped
        );
        for (offset, (class, count)) in
            [("read", row.read), ("delivered", row.delivered), ("skipped", row.skipped)].into_iter().enumerate()
        {
            let h = height(count);
            let _ = write!(
                svg,
                "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"{BAR}\" height=\"{h}\"/>",
                x + offset * BAR,
                10 + HEIGHT - h
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></g>",
            x + 3 * BAR / 2,
            HEIGHT + 28,
            row.day.strftime("%m-%d")
        );
    }
    svg.push_str("</svg>");
    svg
}

fn list(items: Vec<String>) -> String {
    if items.is_empty() { "<p class=\"none\">none</p>".to_owned() } else { format!("<ul>{}</ul>", items.concat()) }
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
section{border-top:1px solid #ccc;padding-top:1em;margin-top:1.5em}\
table td,table th{text-align:left;padding:0 1.5em 0 0}h2 small{color:#666;font-weight:normal}\
.chart rect.read{fill:#8aa9d6}.chart rect.delivered{fill:#3b7d3b}.chart rect.skipped{fill:#d9a53b}\
.chart text{font-size:10px;fill:#555}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}";

/// The page for `tz` (an IANA zone; a bad one is said on the page, and UTC used).
pub async fn render(
    config: &Config,
    state: &dyn StateStore,
    tz: Option<&str>,
    token: Option<&str>,
) -> Result<String, Failure> {
    let asked = tz.unwrap_or("UTC");
    let (zone, zone_name, zone_problem) = match jiff::tz::TimeZone::get(asked) {
        Ok(zone) => (zone, asked.to_owned(), None),
        Err(_) => (jiff::tz::TimeZone::UTC, "UTC".to_owned(), Some(asked)),
    };
    let specs: Vec<_> = config.pipelines.iter().collect();
    let documents = crate::status_data::documents(&specs, Some(state), None).await?;
    let mut html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tillflow status</title>\
         <style>{STYLE}</style></head><body><h1>tillflow status</h1>\
         <form method=\"get\"><label>Days in time zone <input name=\"tz\" value=\"{}\" list=\"zones\"></label>\
         <datalist id=\"zones\">{}</datalist>{}<button>Show</button></form>",
        escape(&zone_name),
        ["UTC", "Europe/Lisbon", "Europe/London", "America/New_York", "America/Los_Angeles", "Pacific/Auckland"]
            .iter()
            .map(|zone| format!("<option value=\"{zone}\">"))
            .collect::<String>(),
        token
            .map(|token| format!("<input type=\"hidden\" name=\"token\" value=\"{}\">", escape(token)))
            .unwrap_or_default()
    );
    if let Some(bad) = zone_problem {
        let _ = write!(html, "<p class=\"problem\">`{}` is not an IANA time zone; showing UTC.</p>", escape(bad));
    }
    for (spec, document) in specs.iter().zip(&documents) {
        let sink_type = config.sinks.get(&spec.sink).map_or("", |table| table.type_name.as_str());
        let name_of = |kind: &str| {
            EventKind::parse(kind)
                .map_or_else(|| kind.to_owned(), |kind| registry::sink_event_name(sink_type, kind).to_owned())
        };
        let text = |key: &str| document[key].as_str().map(str::to_owned);
        let lag = document["streams"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|stream| Some(format!("{} {}s", stream["stream"].as_str()?, stream["lag_seconds"].as_u64()?)))
            .collect::<Vec<_>>();
        let delivered = document["delivered"].as_object().cloned().unwrap_or_default();
        let delivered_items = delivered
            .iter()
            .map(|(kind, count)| {
                format!(
                    "<li data-event=\"{}\" data-count=\"{count}\">{}: {count}</li>",
                    escape(kind),
                    escape(&name_of(kind))
                )
            })
            .collect();
        let skipped_items = document["skipped"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(reason, count)| {
                format!(
                    "<li data-reason=\"{}\" data-count=\"{count}\">{}: {count}</li>",
                    escape(reason),
                    escape(reason)
                )
            })
            .collect();
        let letters = state.dead_letters(Some(&spec.name), LETTERS_READ).await.map_err(Failure::pipeline)?;
        let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
        for letter in &letters {
            *by_reason.entry(without_emails(&letter.reason)).or_default() += 1;
        }
        let letter_items =
            by_reason.iter().map(|(reason, count)| format!("<li>{} × {count}</li>", escape(reason))).collect();
        let notices: Vec<String> = document["source_notices"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|notice| Some(format!("<li>{}</li>", escape(&without_emails(notice.as_str()?)))))
            .collect();
        let rows = chart_rows(state, &spec.name, &zone).await?;
        let _ = write!(
            html,
            "<section class=\"pipeline\" data-pipeline=\"{name}\" data-dead-letters=\"{dead}\">\
             <h2>{name} <small>{source} → {sink}</small></h2><table>\
             <tr><th>first started</th><td>{started}</td></tr>\
             <tr><th>last delivery</th><td>{last}</td></tr>\
             <tr><th>lag</th><td>{lag}</td></tr>\
             <tr><th>webhooks queued</th><td>{queued}</td></tr></table>\
             <h3>Delivered</h3>{delivered}<h3>Skipped</h3>{skipped}\
             <h3>Dead letters ({dead})</h3>{letters}{notices}\
             <h3>Orders per day in {zone}</h3>{chart}\
             <p class=\"legend\"><span style=\"background:#8aa9d6\"></span>read from the source\
             <span style=\"background:#3b7d3b\"></span>delivered<span style=\"background:#d9a53b\"></span>skipped</p>\
             </section>",
            name = escape(&spec.name),
            source = escape(&spec.source),
            sink = escape(&spec.sink),
            started = escape(&text("started_at").unwrap_or_else(|| "never".into())),
            last = escape(&text("last_delivery_at").unwrap_or_else(|| "never".into())),
            lag = escape(&if lag.is_empty() { "no cursor yet".into() } else { lag.join(", ") }),
            queued = document["webhooks_pending"],
            dead = document["dead_letters"],
            delivered = list(delivered_items),
            skipped = list(skipped_items),
            letters = list(letter_items),
            notices = if notices.is_empty() {
                String::new()
            } else {
                format!("<h3>Source notices</h3><ul>{}</ul>", notices.concat())
            },
            zone = escape(&zone_name),
            chart = chart(&rows),
        );
    }
    html.push_str("</body></html>");
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_masked_wherever_they_sit_in_a_text() {
        assert_eq!(
            without_emails("two customers share ann@example.com (ids 4, 9); \"bob@shop.co.uk\" refused"),
            "two customers share a***@example.com (ids 4, 9); \"b***@shop.co.uk\" refused"
        );
        assert_eq!(without_emails("anchor 19@2026-11-30T12:00:00 stays"), "anchor 19@2026-11-30T12:00:00 stays");
        assert_eq!(without_emails("no address here"), "no address here");
    }

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(escape("<b>\"x\" & 'y'</b>"), "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;");
    }
}
