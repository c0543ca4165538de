//! `/runs/{id}/artifacts`: what the run's jobs uploaded with `actions/upload-artifact`,
//! kept under `<data_dir>/artifacts/<run id>/<name>/…`, and each file of it.

use std::path::{Component, Path as FsPath, PathBuf};

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::runs::find_run;
use super::{ApiError, ErrorBody};
use crate::farm::runner::artifacts_dir;
use crate::web::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    // A file's path has slashes: axum routes it as a catch-all (`{*path}`), which the
    // OpenAPI document cannot spell; the document names it `{path}`.
    let (_, documented) = OpenApiRouter::<AppState>::new().routes(routes!(file)).split_for_parts();
    OpenApiRouter::with_openapi(documented)
        .routes(routes!(list))
        .routes(routes!(show))
        .route("/runs/{id}/artifacts/{name}/{*path}", get(file))
}

/// An artifact of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ArtifactView {
    pub name: String,
    /// Bytes, all files together.
    pub size: u64,
    /// Sorted by path.
    pub files: Vec<ArtifactFile>,
}

/// A file of an artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ArtifactFile {
    /// Relative to the artifact's root, `/`-separated; its URL is the artifact's plus `/<path>`.
    pub path: String,
    pub size: u64,
}

/// The run's artifacts, by name.
#[utoipa::path(
    get, path = "/runs/{id}/artifacts", tag = "runs", operation_id = "list_run_artifacts",
    params(("id" = i64, Path, description = "The run's id")),
    responses(
        (status = 200, body = Vec<ArtifactView>, description = "The run's artifacts, sorted by name"),
        (status = 404, body = ErrorBody, description = "No such run"),
    )
)]
async fn list(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<ArtifactView>>, ApiError> {
    find_run(&state, id).await?;
    let dir = artifacts_dir(&state.farm, id);
    let views = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<ArtifactView>> {
        let mut views = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(views),
            Err(err) => return Err(err),
        };
        for entry in entries {
            let entry = entry?;
            // `.owner-<name>` files say which job uploaded each artifact (exec/actions.rs).
            if entry.file_type()?.is_dir() {
                views.push(artifact_view(&entry.path(), &entry.file_name().to_string_lossy())?);
            }
        }
        views.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(views)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
    .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(views))
}

/// One artifact: its files and sizes (the check run's summary links here).
#[utoipa::path(
    get, path = "/runs/{id}/artifacts/{name}", tag = "runs", operation_id = "show_run_artifact",
    params(
        ("id" = i64, Path, description = "The run's id"),
        ("name" = String, Path, description = "The artifact's name"),
    ),
    responses(
        (status = 200, body = ArtifactView, description = "The artifact and its files"),
        (status = 404, body = ErrorBody, description = "No such run or artifact"),
    )
)]
async fn show(
    State(state): State<AppState>,
    Path((id, name)): Path<(i64, String)>,
) -> Result<Json<ArtifactView>, ApiError> {
    let dir = artifact_dir(&state, id, &name).await?;
    let view = tokio::task::spawn_blocking(move || artifact_view(&dir, &name))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(view))
}

/// A file of an artifact, as uploaded (`application/octet-stream`).
#[utoipa::path(
    get, path = "/runs/{id}/artifacts/{name}/{path}", tag = "runs", operation_id = "get_run_artifact_file",
    params(
        ("id" = i64, Path, description = "The run's id"),
        ("name" = String, Path, description = "The artifact's name"),
        ("path" = String, Path, description = "The file's path in the artifact; may contain `/`"),
    ),
    responses(
        (status = 200, description = "The file's contents", content_type = "application/octet-stream"),
        (status = 404, body = ErrorBody, description = "No such run, artifact or file"),
    )
)]
async fn file(
    State(state): State<AppState>,
    Path((id, name, path)): Path<(i64, String, String)>,
) -> Result<Response, ApiError> {
    let dir = artifact_dir(&state, id, &name).await?;
    let relative = FsPath::new(&path);
    if path.is_empty() || !relative.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(ApiError::not_found(format!("no file `{path}` in artifact `{name}`")));
    }
    let not_found = || ApiError::not_found(format!("no file `{path}` in artifact `{name}`"));
    let file = match tokio::fs::File::open(dir.join(relative)).await {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
        Err(err) => return Err(ApiError::internal(&err)),
    };
    let meta = file.metadata().await.map_err(|e| ApiError::internal(&e))?;
    if !meta.is_file() {
        return Err(not_found());
    }
    // Streamed: an artifact (a kernel log, a disk image) may be larger than the server's memory.
    let chunks = futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buffer = vec![0; 64 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok::<_, std::io::Error>(buffer), file))
            }
            Err(err) => Some((Err(err), file)),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, meta.len().to_string()),
        ],
        axum::body::Body::from_stream(chunks),
    )
        .into_response())
}

/// The directory of artifact `name` of run `id`, or 404.
async fn artifact_dir(state: &AppState, id: i64, name: &str) -> Result<PathBuf, ApiError> {
    find_run(state, id).await?;
    let missing = || ApiError::not_found(format!("run {id} has no artifact `{name}`"));
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(missing());
    }
    let dir = artifacts_dir(&state.farm, id).join(name);
    match tokio::fs::metadata(&dir).await {
        Ok(meta) if meta.is_dir() => Ok(dir),
        _ => Err(missing()),
    }
}

/// The files under an artifact's directory.
fn artifact_view(dir: &FsPath, name: &str) -> std::io::Result<ArtifactView> {
    fn walk(root: &FsPath, dir: &FsPath, files: &mut Vec<ArtifactFile>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(root, &entry.path(), files)?;
            } else if kind.is_file() {
                let path = entry.path();
                let relative = path.strip_prefix(root).unwrap_or(&path);
                let parts: Vec<String> =
                    relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                files.push(ArtifactFile { path: parts.join("/"), size: entry.metadata()?.len() });
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(ArtifactView { name: name.to_owned(), size: files.iter().map(|f| f.size).sum(), files })
}
