//! Cobbler 3.x through its XML-RPC API (`/cobbler_api` behind Apache, cobblerd's own
//! port otherwise): log in (again when cobblerd restarted and forgot the token), find
//! a system, set its profile, install metadata and `netboot_enabled`, save, power it
//! through its fence agent, and read whether the kickstart's `%post` turned network
//! boot off again (Cobbler's `nopxe` service: the install finished).
//!
//! XML-RPC bodies are `dxr`'s; the transport is the hyper client the farm already has.
//! Quirks of Cobbler 3.3 coded around (see `../shared/reference/cobbler.md`): a missing
//! object comes back as the string `"~"`, inherited fields as `"<<inherit>>"`, every
//! error is a fault with code 1 whose text names the Python exception, and the server
//! closes the connection after each answer (HTTP/1.0).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use dxr::{Fault, FaultResponse, MethodCall, MethodResponse, TryFromValue, TryToValue, Value};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Mutex;

use super::{
    InstallRequest, InstallStatus, PowerAction, PowerState, ProvisionError, ProvisionFuture, Provisioner,
};

/// How long one call may take: a power cycle is 5 s of Cobbler's own sleep, a failing
/// fence agent about 6 s of its retries.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The pauses between attempts of a call that failed (unreachable or refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff(pub Vec<Duration>);

impl Default for Backoff {
    /// Four attempts over about 7 s: a cobblerd restart is over by then.
    fn default() -> Backoff {
        Backoff(vec![Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4)])
    }
}

/// A Cobbler server and the account the farm uses there.
#[derive(Debug)]
pub struct CobblerClient {
    url: hyper::Uri,
    username: String,
    password: String,
    backoff: Backoff,
    http: Client<HttpConnector, Full<Bytes>>,
    /// The login token, renewed when Cobbler no longer knows it.
    token: Mutex<Option<String>>,
}

/// One call's failure, before the retries decide.
#[derive(Debug)]
enum CallError {
    Transport(String),
    Fault(String),
    Malformed(String),
}

impl CobblerClient {
    /// A client of the API at `url` (e.g. `http://cobbler.lab/cobbler_api`).
    pub fn new(url: &str, username: &str, password: &str) -> Result<CobblerClient, ProvisionError> {
        let uri: hyper::Uri = url.parse().map_err(|e| ProvisionError::Protocol {
            backend: format!("Cobbler at {url}"),
            message: format!("`{url}` is not a URL: {e}"),
        })?;
        if uri.scheme_str() != Some("http") {
            return Err(ProvisionError::Protocol {
                backend: format!("Cobbler at {url}"),
                message: "only http:// is supported (put Cobbler's API on the lab network, or a TLS proxy on the farm's host)".into(),
            });
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        // Cobbler closes every connection after its answer: nothing to keep.
        let http = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(connector);
        Ok(CobblerClient {
            url: uri,
            username: username.to_owned(),
            password: password.to_owned(),
            backoff: Backoff::default(),
            http,
            token: Mutex::new(None),
        })
    }

    /// The client `[cobbler]` describes; the password from `password_file` (empty without one).
    pub fn from_config(config: &crate::config::CobblerConfig) -> Result<CobblerClient, ProvisionError> {
        let password = match &config.password_file {
            Some(path) => read_password(path).map_err(|message| ProvisionError::Protocol {
                backend: format!("Cobbler at {}", config.url),
                message,
            })?,
            None => String::new(),
        };
        CobblerClient::new(&config.url, &config.username, &password)
    }

    /// The pauses between attempts (tests shorten them).
    pub fn with_backoff(mut self, backoff: Backoff) -> CobblerClient {
        self.backoff = backoff;
        self
    }

    fn backend(&self) -> String {
        format!("Cobbler at {}", self.url)
    }

    /// Cobbler's version, e.g. `3.3.10`.
    pub async fn version(&self) -> Result<String, ProvisionError> {
        let value = self.call("extended_version", vec![]).await?;
        let fields = self.decode::<HashMap<String, Value>>("extended_version", &value)?;
        let version =
            fields.get("version").ok_or_else(|| self.malformed("extended_version", "no `version`"))?;
        self.decode::<String>("extended_version", version)
    }

    /// Whether Cobbler has a system named `name`.
    pub async fn has_system(&self, name: &str) -> Result<bool, ProvisionError> {
        let value = self.call("has_item", vec![text("system"), text(name)]).await?;
        self.decode::<bool>("has_item", &value)
    }

    /// The system's fields as Cobbler stores them (inherited ones as `"<<inherit>>"`).
    pub async fn system(&self, name: &str) -> Result<HashMap<String, Value>, ProvisionError> {
        let value = self.call("get_system", vec![text(name)]).await?;
        if String::try_from_value(&value).is_ok_and(|s| s == "~") {
            return Err(self.no_such_system(name));
        }
        self.decode("get_system", &value)
    }

    /// Whether the system boots into the installer at its next power-on.
    pub async fn netboot_enabled(&self, name: &str) -> Result<bool, ProvisionError> {
        let system = self.system(name).await?;
        let value = system
            .get("netboot_enabled")
            .ok_or_else(|| self.malformed("get_system", "no `netboot_enabled`"))?;
        self.decode("get_system", value)
    }

    async fn handle(&self, name: &str) -> Result<String, ProvisionError> {
        let value = match self.call_with_token("get_system_handle", vec![text(name)]).await {
            Err(ProvisionError::Refused { message, .. }) if is_missing_system(&message) => {
                return Err(self.no_such_system(name))
            }
            other => other?,
        };
        self.decode("get_system_handle", &value)
    }

    async fn modify(&self, handle: &str, attribute: &str, value: Value) -> Result<(), ProvisionError> {
        let changed =
            self.call_with_token("modify_system", vec![text(handle), text(attribute), value]).await?;
        if self.decode::<bool>("modify_system", &changed)? {
            Ok(())
        } else {
            // Cobbler answers false, not a fault, for an attribute it does not have.
            Err(self.malformed("modify_system", &format!("no system attribute `{attribute}`")))
        }
    }

    async fn save(&self, handle: &str) -> Result<(), ProvisionError> {
        self.call_with_token("save_system", vec![text(handle)]).await.map(drop)
    }

    /// The system's own install metadata (`autoinstall_meta`), without inherited values.
    async fn own_meta(&self, name: &str) -> Result<BTreeMap<String, String>, ProvisionError> {
        let system = self.system(name).await?;
        let Some(meta) = system.get("autoinstall_meta") else { return Ok(BTreeMap::new()) };
        // `"<<inherit>>"` (a string) when the system has none of its own.
        let Ok(fields) = HashMap::<String, Value>::try_from_value(meta) else { return Ok(BTreeMap::new()) };
        Ok(fields.into_iter().map(|(k, v)| (k, value_text(&v))).collect())
    }

    async fn reinstall(&self, request: &InstallRequest) -> Result<(), ProvisionError> {
        // A missing system is `NoSuchSystem` here, before anything changes.
        let mut meta = self.own_meta(&request.system).await?;
        meta.extend(request.meta.clone());
        let meta: HashMap<String, String> = meta.into_iter().collect();
        let handle = self.handle(&request.system).await?;
        self.modify(&handle, "profile", text(&request.profile)).await?;
        self.modify(&handle, "autoinstall_meta", to_value(&meta)).await?;
        self.modify(&handle, "netboot_enabled", Value::boolean(true)).await?;
        // Saving writes the system's PXE file: the next boot is the installer's.
        self.save(&handle).await?;
        self.power_system(&request.system, PowerAction::Cycle).await
    }

    async fn power_system(&self, name: &str, action: PowerAction) -> Result<(), ProvisionError> {
        let handle = self.handle(name).await?;
        let power = match action {
            PowerAction::On => "on",
            PowerAction::Off => "off",
            PowerAction::Cycle => "reboot",
        };
        self.call_with_token("power_system", vec![text(&handle), text(power)]).await.map(drop)
    }

    async fn power_state(&self, name: &str) -> Result<PowerState, ProvisionError> {
        let handle = self.handle(name).await?;
        let on = self.call_with_token("power_system", vec![text(&handle), text("status")]).await?;
        Ok(if self.decode::<bool>("power_system", &on)? { PowerState::On } else { PowerState::Off })
    }

    /// A call that needs the login token: logs in first, and again when Cobbler no
    /// longer knows the token (it keeps tokens in memory only).
    async fn call_with_token(&self, method: &str, params: Vec<Value>) -> Result<Value, ProvisionError> {
        for fresh_login in [false, true] {
            let token = self.token(fresh_login).await?;
            let mut with_token = params.clone();
            with_token.push(text(&token));
            match self.call(method, with_token).await {
                Err(ProvisionError::Refused { message, .. })
                    if !fresh_login && message.contains("invalid token") =>
                {
                    tracing::info!("Cobbler forgot the farm's login (restarted?): logging in again");
                }
                other => return other,
            }
        }
        unreachable!("the second round returns")
    }

    async fn token(&self, renew: bool) -> Result<String, ProvisionError> {
        let mut token = self.token.lock().await;
        if renew {
            *token = None;
        }
        if let Some(token) = token.as_ref() {
            return Ok(token.clone());
        }
        let value = self.call("login", vec![text(&self.username), text(&self.password)]).await?;
        let fresh: String = self.decode("login", &value)?;
        *token = Some(fresh.clone());
        Ok(fresh)
    }

    /// One method call, tried again after each pause of the backoff while Cobbler does
    /// not answer or refuses; a missing system is not tried again.
    async fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, ProvisionError> {
        let mut pauses = self.backoff.0.iter();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let error = match self.call_once(method, params.clone()).await {
                Ok(value) => return Ok(value),
                Err(CallError::Fault(message)) if is_missing_system(&message) => {
                    return Err(ProvisionError::Refused {
                        backend: self.backend(),
                        call: method.to_owned(),
                        attempts,
                        message,
                    })
                }
                // A bad password or an expired token does not get better by waiting.
                Err(CallError::Fault(message))
                    if message.contains("login failed") || message.contains("invalid token") =>
                {
                    return Err(ProvisionError::Refused {
                        backend: self.backend(),
                        call: method.to_owned(),
                        attempts,
                        message,
                    })
                }
                Err(error) => error,
            };
            let Some(pause) = pauses.next() else {
                return Err(match error {
                    CallError::Transport(reason) => {
                        ProvisionError::Unreachable { backend: self.backend(), attempts, reason }
                    }
                    CallError::Fault(message) => ProvisionError::Refused {
                        backend: self.backend(),
                        call: method.to_owned(),
                        attempts,
                        message,
                    },
                    CallError::Malformed(message) => {
                        ProvisionError::Protocol { backend: self.backend(), message }
                    }
                });
            };
            tracing::warn!(method, attempt = attempts, error = ?error, "Cobbler call failed; trying again");
            tokio::time::sleep(*pause).await;
        }
    }

    async fn call_once(&self, method: &str, params: Vec<Value>) -> Result<Value, CallError> {
        let call = MethodCall::new(method.to_owned(), params);
        let xml =
            dxr::serialize_xml(&call).map_err(|e| CallError::Malformed(format!("encoding {method}: {e}")))?;
        let body = format!("<?xml version=\"1.0\"?>\n{xml}\n");
        let request = hyper::Request::post(self.url.clone())
            .header(hyper::header::CONTENT_TYPE, "text/xml")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CallError::Malformed(e.to_string()))?;
        let exchange = async {
            let response =
                self.http.request(request).await.map_err(|e| CallError::Transport(error_chain(&e)))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| CallError::Transport(error_chain(&e)))?
                .to_bytes();
            Ok::<_, CallError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(CALL_TIMEOUT, exchange).await.map_err(|_| {
            CallError::Transport(format!("no answer to {method} within {} s", CALL_TIMEOUT.as_secs()))
        })??;
        if status.is_server_error() {
            return Err(CallError::Transport(format!("HTTP {status}")));
        }
        let text = String::from_utf8_lossy(&bytes);
        if !status.is_success() {
            return Err(CallError::Malformed(format!("HTTP {status} to {method}: {}", text.trim())));
        }
        // A <fault> is unambiguous; try it first.
        if let Ok(fault) = dxr::deserialize_xml::<FaultResponse>(&text) {
            let fault = Fault::try_from(fault).map_err(|e| CallError::Malformed(e.to_string()))?;
            return Err(CallError::Fault(fault_message(fault.string())));
        }
        let response: MethodResponse = dxr::deserialize_xml(&text)
            .map_err(|e| CallError::Malformed(format!("the answer to {method} is not XML-RPC: {e}")))?;
        Ok(response.inner())
    }

    fn decode<T: TryFromValue>(&self, method: &str, value: &Value) -> Result<T, ProvisionError> {
        T::try_from_value(value).map_err(|e| self.malformed(method, &e.to_string()))
    }

    fn malformed(&self, method: &str, message: &str) -> ProvisionError {
        ProvisionError::Protocol { backend: self.backend(), message: format!("{method}: {message}") }
    }

    fn no_such_system(&self, system: &str) -> ProvisionError {
        ProvisionError::NoSuchSystem { backend: self.backend(), system: system.to_owned() }
    }
}

impl Provisioner for CobblerClient {
    fn describe(&self) -> String {
        self.backend()
    }

    fn system_exists<'a>(&'a self, system: &'a str) -> ProvisionFuture<'a, bool> {
        Box::pin(self.has_system(system))
    }

    fn start_install<'a>(&'a self, request: &'a InstallRequest) -> ProvisionFuture<'a, ()> {
        Box::pin(self.reinstall(request))
    }

    fn install_status<'a>(&'a self, system: &'a str) -> ProvisionFuture<'a, InstallStatus> {
        Box::pin(async move {
            // `%post` calls nopxe, which turns network boot off: the install is done.
            Ok(if self.netboot_enabled(system).await? {
                InstallStatus::Installing
            } else {
                InstallStatus::Finished
            })
        })
    }

    fn power<'a>(&'a self, system: &'a str, action: PowerAction) -> ProvisionFuture<'a, ()> {
        Box::pin(self.power_system(system, action))
    }

    fn power_status<'a>(&'a self, system: &'a str) -> ProvisionFuture<'a, PowerState> {
        Box::pin(self.power_state(system))
    }
}

fn text(s: &str) -> Value {
    Value::string(s.to_owned())
}

fn to_value(map: &HashMap<String, String>) -> Value {
    map.try_to_value().expect("a map of strings is an XML-RPC struct")
}

/// A metadata value as text, whatever its XML-RPC type.
fn value_text(value: &Value) -> String {
    if let Ok(s) = String::try_from_value(value) {
        return s;
    }
    if let Ok(b) = bool::try_from_value(value) {
        return b.to_string();
    }
    if let Ok(i) = i32::try_from_value(value) {
        return i.to_string();
    }
    f64::try_from_value(value).map(|f| f.to_string()).unwrap_or_default()
}

/// `<class 'cobbler.cexceptions.CX'>:'message'` → `message` (the class is noise to a reader).
fn fault_message(fault: &str) -> String {
    match fault.split_once(">:") {
        Some((_, message)) => {
            let message = message.trim();
            // Python's repr of the message: quoted when the exception carried a string.
            match message.as_bytes() {
                [q @ (b'\'' | b'"'), .., last] if last == q => message[1..message.len() - 1].to_owned(),
                _ => message.to_owned(),
            }
        }
        None => fault.to_owned(),
    }
}

fn is_missing_system(message: &str) -> bool {
    message.contains("unknown system name")
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn read_password(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|e| format!("cannot read the Cobbler password from {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_texts_lose_the_python_class() {
        assert_eq!(
            fault_message("<class 'cobbler.cexceptions.CX'>:'internal error, unknown system name x'"),
            "internal error, unknown system name x"
        );
        assert_eq!(
            fault_message("<class 'ValueError'>:\"token\" did not have the correct format"),
            "\"token\" did not have the correct format"
        );
        assert_eq!(fault_message("plain"), "plain");
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        assert!(CobblerClient::new("http://cobbler.lab/cobbler_api", "cobbler", "pw").is_ok());
        let err = CobblerClient::new("https://cobbler.lab/cobbler_api", "cobbler", "pw").unwrap_err();
        assert!(err.to_string().contains("only http://"), "{err}");
        assert!(CobblerClient::new("not a url", "cobbler", "pw").is_err());
    }
}
