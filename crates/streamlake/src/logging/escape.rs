//! Field values of text logs with their control characters made visible.
//!
//! # Guarantees
//! - Every field value of a text log line, the message included, and every span field, is
//!   written with its control characters escaped: `\n`, `\r` and `\t` as those two-character
//!   escapes, the other C0 characters and DEL as `\xNN`, the C1 characters (U+0080 to U+009F)
//!   and the Unicode line and paragraph separators as `\u{NNNN}`. A value can therefore
//!   neither start a forged log line nor send an escape sequence to the terminal.
//! - Only values go through the escaping: the formatter's own colour codes (when stderr is a
//!   terminal) are written around them unchanged.
//! - JSON logs need none of this: JSON strings escape control characters already.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;

/// `text` with every control character escaped (see the module documentation); borrowed
/// unchanged when it has none.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    // Writing to a String cannot fail.
    let _ = Escaper(&mut out).write_str(text);
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// A writer that escapes control characters on their way through.
struct Escaper<'a, W: fmt::Write + ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Escaper<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, c) in s.char_indices() {
            if !needs_escape(c) {
                continue;
            }
            self.0.write_str(&s[plain..i])?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c if (c as u32) < 0x80 => write!(self.0, "\\x{:02x}", c as u32)?,
                c => write!(self.0, "\\u{{{:04x}}}", c as u32)?,
            }
            plain = i + c.len_utf8();
        }
        self.0.write_str(&s[plain..])
    }
}

/// The text formatter's field formatting (`name=value` pairs separated by spaces, the message
/// first and bare, field names in bold on a terminal), with every value escaped. Use it with
/// `tracing_subscriber::fmt::layer().fmt_fields(EscapedFields)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl EscapingVisitor<'_> {
    fn write(&mut self, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        if !std::mem::replace(&mut self.first, false) {
            self.writer.write_char(' ')?;
        }
        if name != "message" {
            let bold = self.writer.has_ansi_escapes();
            if bold {
                self.writer.write_str("\x1b[1m")?;
            }
            Escaper(&mut self.writer).write_str(name)?;
            if bold {
                self.writer.write_str("\x1b[0m")?;
            }
            self.writer.write_char('=')?;
        }
        write!(Escaper(&mut self.writer), "{value:?}")
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `log` records carry their metadata as `log.*` fields, shown elsewhere on the line.
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        self.result = self.write(field, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// One event (inside a span) formatted by the text formatter with [`EscapedFields`].
    fn format_event(ansi: bool) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(ansi)
            .with_writer(move || writer.clone())
            .fmt_fields(EscapedFields)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let path = "/v1/orders\n2026-01-01 INFO forged";
            let span = tracing::info_span!("request", path);
            let _entered = span.enter();
            let reason = "\x1b[31mred\x1b]0;title\x07\u{9b}31m";
            tracing::warn!(path, reason = %reason, "bad request to {path}");
        });
        let bytes = captured.0.lock().expect("not poisoned").clone();
        String::from_utf8(bytes).expect("UTF-8")
    }

    #[test]
    fn values_cannot_forge_lines_or_reach_the_terminal() {
        for ansi in [false, true] {
            let out = format_event(ansi);
            assert!(out.ends_with('\n'), "{out:?}");
            assert_eq!(out.lines().count(), 1, "{out:?}");
            assert!(!out.contains('\r') && !out.contains('\u{7}') && !out.contains('\u{9b}'));
            // The message, a Display field and the span field, each escaped.
            assert!(
                out.contains(r"bad request to /v1/orders\n2026-01-01 INFO forged"),
                "{out:?}"
            );
            assert!(
                out.contains(r"\x1b[31mred\x1b]0;title\x07\u{009b}31m"),
                "{out:?}"
            );
            // The message, the event's field and the span's field.
            assert_eq!(
                out.matches(r"/v1/orders\n2026-01-01 INFO forged").count(),
                3,
                "{out:?}"
            );
            let raw_escapes: Vec<&str> = out.split('\x1b').skip(1).collect();
            if ansi {
                // Only the formatter's own styles remain: SGR sequences it wrote itself.
                assert!(out.contains("\x1b[1mreason\x1b[0m="), "{out:?}");
                assert!(
                    raw_escapes
                        .iter()
                        .all(|s| !s.starts_with("[31m") && !s.starts_with(']')),
                    "{out:?}"
                );
            } else {
                assert!(raw_escapes.is_empty(), "{out:?}");
                assert!(out.contains(" reason=\\x1b[31m"), "{out:?}");
            }
        }
    }

    #[test]
    fn escape_control_leaves_plain_text_alone() {
        assert!(matches!(escape_control("plain ünïcode"), Cow::Borrowed(_)));
        assert_eq!(
            escape_control("a\nb\rc\td\u{0}e\u{7f}f\u{85}g\u{2028}"),
            r"a\nb\rc\td\x00e\x7ff\u{0085}g\u{2028}"
        );
    }
}
