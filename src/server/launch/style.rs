//! `GET /smart-style.json`: the look of the simulated EHR, for apps to blend in (SMART App
//! Launch 2.2, "Styling", `smart_style_url`). The colours are the portal pages' own.

use axum::Json;
use serde_json::{json, Value};

/// Where the style is served.
pub const STYLE_PATH: &str = "/smart-style.json";

/// The style document.
pub async fn style() -> Json<Value> {
    Json(json!({
        "color_background": "#f3f5f8",
        "color_error": "#a8261b",
        "color_highlight": "#1f5fbf",
        "color_modal_backdrop": "rgba(0, 0, 0, 0.4)",
        "color_success": "#1e7a3c",
        "color_muted": "#5b6777",
        "color_border": "#d8dee6",
        "color_text": "#1d2733",
        "dim_border_radius": "6px",
        "dim_font_size": "16px",
        "dim_spacing_size": "16px",
        "font_family_body": "system-ui, -apple-system, \"Segoe UI\", Roboto, sans-serif",
        "font_family_heading": "system-ui, -apple-system, \"Segoe UI\", Roboto, sans-serif",
    }))
}
