//! The pages the person's browser shows at the callback port: plain HTML, escaped text, no
//! script (the listener serves them with a strict CSP).

/// Escapes text for HTML element content and attribute values.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The close-the-tab line under most pages.
const CLOSE: &str = "You can close this tab and return to your program.";

fn page(title: &str, message: &str, accent: &str) -> String {
    page_with(title, message, CLOSE, accent)
}

fn page_with(title: &str, message: &str, next: &str, accent: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>\
         body{{font-family:system-ui,sans-serif;background:#f6f7f9;color:#1d2330;\
         display:flex;align-items:center;justify-content:center;min-height:100vh;margin:0}}\
         main{{background:#fff;border-radius:12px;padding:2rem 2.5rem;max-width:28rem;\
         box-shadow:0 2px 12px rgba(0,0,0,.08);border-top:6px solid {accent}}}\
         h1{{font-size:1.3rem;margin:0 0 .6rem}}p{{margin:.3rem 0;line-height:1.5}}\
         </style></head><body><main><h1>{title}</h1><p>{message}</p>\
         <p>{next}</p></main></body></html>",
        title = html_escape(title),
        message = html_escape(message),
        next = html_escape(next),
    )
}

pub(super) fn success() -> String {
    page(
        "Signed in",
        "The authorization was received; your program is finishing the sign-in.",
        "#1a7f37",
    )
}

pub(super) fn failure(reason: &str) -> String {
    page("Sign-in did not complete", reason, "#cf222e")
}

/// For a second opening of the one-time launch URL.
pub(super) fn opened_twice() -> String {
    page_with(
        "This sign-in link was already used",
        "The link your program opened for this sign-in was opened a second time. Someone else \
         on this computer may have read it, so the sign-in was stopped.",
        "Close this tab and start the login again from your program.",
        "#cf222e",
    )
}

/// For a response whose `state` is not the one of the login under way.
pub(super) fn not_this_login() -> String {
    page_with(
        "Not the sign-in in progress",
        "This response does not belong to the login in progress. It may come from an \
         older tab or from another program's sign-in; it was not used.",
        "Close this tab. If your program is still waiting, finish the sign-in in the tab \
         it opened most recently, or start the login again from your program.",
        "#9a6700",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_text() {
        let p = failure("<script>alert('x')</script>");
        assert!(!p.contains("<script>"));
        assert!(p.contains("&lt;script&gt;"));
    }
}
