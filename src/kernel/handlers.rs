//! Replies to the requests that do not run a cell: kernel_info, complete, inspect,
//! is_complete, comm_info, and the error reply to a request that could not be read.
//!
//! Jupyter counts cursor positions in Unicode code points; the session counts bytes.
//! The conversion happens here, both ways.

use jupyter_protocol::{
    CodeMirrorMode, CommInfoReply, CompleteReply, CompleteRequest, HelpLink, InspectReply,
    InspectRequest, IsCompleteReply, JupyterMessageContent, KernelInfoReply, LanguageInfo, Media,
    MediaType, ReplyStatus,
};
use serde_json::json;

use super::wire;
use crate::session::{self, Completeness, Session};

/// The protocol version this kernel speaks.
pub const PROTOCOL_VERSION: &str = "5.3";

/// kernel_info_reply: who this kernel is and what its cells are written in.
pub fn kernel_info() -> KernelInfoReply {
    KernelInfoReply {
        status: ReplyStatus::Ok,
        protocol_version: PROTOCOL_VERSION.into(),
        implementation: "smartnb".into(),
        implementation_version: env!("CARGO_PKG_VERSION").into(),
        language_info: LanguageInfo {
            name: "rust".into(),
            // The oldest Rust this crate supports (rust-version in Cargo.toml).
            version: env!("CARGO_PKG_RUST_VERSION").into(),
            mimetype: Some("text/rust".into()),
            file_extension: Some(".rs".into()),
            pygments_lexer: Some("rust".into()),
            codemirror_mode: Some(CodeMirrorMode::Simple("rust".into())),
            nbconvert_exporter: Some("script".into()),
        },
        banner: format!(
            "smartnb {} - learn and test SMART on FHIR. Helper commands (register, token, \
             fetch, authorize, exchange, ...) run against an embedded SMART server; \
             `help` lists them.",
            env!("CARGO_PKG_VERSION")
        ),
        help_links: vec![
            HelpLink {
                text: "SMART App Launch".into(),
                url: "https://hl7.org/fhir/smart-app-launch/".into(),
            },
            HelpLink {
                text: "FHIR R4".into(),
                url: "https://hl7.org/fhir/R4/".into(),
            },
        ],
        debugger: false,
        error: None,
    }
}

/// complete_reply: the REPL's completions, with positions in code points.
pub fn complete(session: &mut Session, request: &CompleteRequest) -> CompleteReply {
    let code = &request.code;
    let found = session.complete(code, byte_offset(code, request.cursor_pos));
    CompleteReply {
        matches: found.matches,
        cursor_start: code_points(code, found.start),
        cursor_end: code_points(code, found.end),
        metadata: Default::default(),
        status: ReplyStatus::Ok,
        error: None,
    }
}

/// inspect_reply: the help text of the command under the cursor.
pub fn inspect(session: &mut Session, request: &InspectRequest) -> InspectReply {
    let code = &request.code;
    match session.inspect(code, byte_offset(code, request.cursor_pos)) {
        Some(help) => InspectReply {
            found: true,
            data: Media::new(vec![MediaType::Plain(help)]),
            ..InspectReply::default()
        },
        None => InspectReply::default(),
    }
}

/// is_complete_reply: an unclosed quote, trailing backslash or open bracket waits for more.
pub fn is_complete(code: &str) -> IsCompleteReply {
    match session::is_complete(code) {
        Completeness::Complete => IsCompleteReply::complete(),
        Completeness::Incomplete => IsCompleteReply::incomplete(String::new()),
    }
}

/// comm_info_reply: this kernel opens no comms.
pub fn comm_info() -> CommInfoReply {
    CommInfoReply::default()
}

/// The error reply to a request whose content could not be read.
pub fn bad_request(msg_type: &str, problem: &str) -> JupyterMessageContent {
    let reply_type = format!("{}_reply", msg_type.trim_end_matches("_request"));
    wire::raw(
        &reply_type,
        json!({
            "status": "error",
            "ename": "BadRequest",
            "evalue": format!("the {msg_type} could not be read: {problem}"),
            "traceback": [],
        }),
    )
}

/// The byte offset of code point `position` (the end when past it).
pub fn byte_offset(code: &str, position: usize) -> usize {
    code.char_indices()
        .nth(position)
        .map_or(code.len(), |(byte, _)| byte)
}

/// The code point position of byte offset `byte` (rounded down to a char boundary).
pub fn code_points(code: &str, byte: usize) -> usize {
    let mut byte = byte.min(code.len());
    while !code.is_char_boundary(byte) {
        byte -= 1;
    }
    code[..byte].chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_convert_both_ways() {
        let code = "set ü 1\nreg";
        assert_eq!(byte_offset(code, 5), 6);
        assert_eq!(code_points(code, 6), 5);
        assert_eq!(byte_offset(code, 100), code.len());
        assert_eq!(code_points(code, 5), 4);
        assert_eq!(code_points(code, code.len()), code.chars().count());
    }

    #[test]
    fn kernel_info_names_the_language() {
        let info = serde_json::to_value(kernel_info()).unwrap();
        assert_eq!(info["language_info"]["name"], "rust");
        assert_eq!(info["language_info"]["codemirror_mode"], "rust");
        assert_eq!(info["language_info"]["pygments_lexer"], "rust");
        assert_eq!(info["protocol_version"], "5.3");
        assert_eq!(info["status"], "ok");
    }

    #[test]
    fn bad_requests_get_error_replies() {
        let reply = bad_request("complete_request", "missing field `code`");
        assert_eq!(reply.message_type(), "complete_reply");
        let value = serde_json::to_value(&reply).unwrap();
        assert_eq!(value["status"], "error");
        assert_eq!(value["ename"], "BadRequest");
    }
}
