//! The service: one HTTP exchange per request on the account's client (its
//! rate gates, 429 pauses and retries), answering with what the platform said;
//! and the account-wide calls beside delivery (the check, forgetting a person).

use async_trait::async_trait;
use tillflow_core::ConnectorError;
use tillflow_core::forget::ForgetReport;
use tillflow_http::Answer;

#[async_trait]
pub trait Service<R: Send + 'static>: Send + Sync + 'static {
    /// Sends one request body of family `route`. A 4xx about the request is
    /// an `Ok` answer for the classifier; wrong credentials (a configuration
    /// error) and unavailability after the retries (transient) are errors.
    async fn call(&self, route: R, body: Vec<u8>) -> Result<Answer, ConnectorError>;

    /// What must be known of the account before any request is built (a
    /// list's fields, say); called before every delivery, so it must be
    /// cheap once done. An error fails the delivery.
    async fn prepare(&self) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// After every request of one delivery was judged, the follow-ups the
    /// accepted answers of `route` call for (e.g. putting the profiles they
    /// created on a list). An error fails the delivery.
    async fn settle(&self, _route: R, _accepted: Vec<Answer>) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Reaches the platform with the configured credentials.
    async fn check(&self) -> Result<(), ConnectorError>;

    /// Asks the platform, through its own deletion or privacy API, to delete
    /// the person with this email address and everything it holds of them
    /// (`tillflow forget`). Asking again is harmless; a platform that does not
    /// know the person says so in the report (`known: false`), not as an error.
    async fn forget(&self, email: &str) -> Result<ForgetReport, ConnectorError>;
}
