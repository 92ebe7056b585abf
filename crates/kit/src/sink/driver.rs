//! The sink loop every sink runs: route and encode each event once, pack,
//! send (several requests in flight), classify each answer into per-item
//! outcomes, split requests the platform asks to split, send refused
//! requests' items again one by one, turn conflicts into updates, then
//! settle follow-ups. It is both the account (shared by
//! the pipelines naming it) and each pipeline's writer.

use crate::account::SinkAccount;
use crate::sink::pack::{Packed, pack};
use crate::sink::request::{RequestBuilder, RouteError};
use crate::sink::response::{ItemVerdict, ResponseClassifier, Verdict};
use crate::sink::service::Service;
use crate::sink::spec::SinkSpec;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use tillflow_core::forget::ForgetReport;
use tillflow_core::model::Person;
use tillflow_core::{ConnectorError, ErrorClass, Event, EventKind, ItemOutcome, Preview, PreviewRequest, Sink};
use tillflow_http::Answer;

pub struct SinkLoop<B: RequestBuilder, S, C> {
    spec: &'static SinkSpec,
    builder: Arc<B>,
    service: Arc<S>,
    classifier: Arc<C>,
}

impl<B: RequestBuilder, S, C> Clone for SinkLoop<B, S, C> {
    fn clone(&self) -> Self {
        Self {
            spec: self.spec,
            builder: self.builder.clone(),
            service: self.service.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

/// One request to send: its family, the batch positions of its items, its body.
struct Outgoing<R> {
    route: R,
    positions: Vec<usize>,
    body: Vec<u8>,
}

impl<B, S, C> SinkLoop<B, S, C>
where
    B: RequestBuilder,
    S: Service<B::Route>,
    C: ResponseClassifier<B::Route>,
{
    pub fn new(spec: &'static SinkSpec, builder: B, service: S, classifier: C) -> Self {
        Self { spec, builder: Arc::new(builder), service: Arc::new(service), classifier: Arc::new(classifier) }
    }

    pub fn spec(&self) -> &'static SinkSpec {
        self.spec
    }

    pub fn builder(&self) -> &B {
        &self.builder
    }

    /// Encodes and packs `positions` of `batch` (all of family `route`),
    /// dead-lettering what cannot be encoded or is too large.
    fn outgoing(
        &self,
        batch: &[Event],
        history: bool,
        route: B::Route,
        positions: &[usize],
        outcomes: &mut [ItemOutcome],
    ) -> Vec<Outgoing<B::Route>> {
        let mut items = Vec::with_capacity(positions.len());
        for &position in positions {
            match self.builder.encode(&batch[position], route.clone(), history) {
                Ok(item) => items.push((position, batch[position].key.as_str(), item)),
                Err(reason) => outcomes[position] = ItemOutcome::Rejected { reason },
            }
        }
        let packing = self.builder.packing(route.clone());
        let (packed, refused) = pack(items, &packing);
        for (position, reason) in refused {
            outcomes[position] = ItemOutcome::Rejected { reason };
        }
        let mut requests = Vec::with_capacity(packed.len());
        for Packed { positions, body } in packed {
            // Too few for the family (a bulk import of one): each goes alone
            // through the family's single-item route, when it has one.
            match self.builder.isolate(route.clone()).filter(|_| positions.len() < packing.min_items) {
                Some(single) if single != route => {
                    requests.extend(self.outgoing(batch, history, single, &positions, outcomes));
                }
                _ => requests.push(Outgoing { route: route.clone(), positions, body }),
            }
        }
        requests
    }

    /// The first requests of `batch`: families in the order their first
    /// event comes (profiles before the events that name them), positions in
    /// batch order; what cannot be routed or encoded marked in `outcomes`.
    fn first_requests(&self, batch: &[Event], history: bool, outcomes: &mut [ItemOutcome]) -> Vec<Outgoing<B::Route>> {
        let mut families: Vec<(B::Route, Vec<usize>)> = Vec::new();
        for (position, event) in batch.iter().enumerate() {
            match self.builder.route(event, history) {
                Ok(route) => match families.iter_mut().find(|(r, _)| *r == route) {
                    Some((_, positions)) => positions.push(position),
                    None => families.push((route, vec![position])),
                },
                Err(RouteError::Reject(reason)) => outcomes[position] = ItemOutcome::Rejected { reason },
                Err(RouteError::Skip(reason)) => outcomes[position] = ItemOutcome::Skipped { reason },
            }
        }
        let mut requests = Vec::new();
        for (route, positions) in &families {
            requests.extend(self.outgoing(batch, history, route.clone(), positions, outcomes));
        }
        requests
    }

    /// Sends every request, at most `in_flight` at once, answers in request
    /// order. A configuration or transient failure stops the launching of
    /// further requests and fails the delivery; a permanent one (the request
    /// could not even be made) is that request's answer.
    async fn send_all(
        &self,
        requests: Vec<(B::Route, Vec<u8>)>,
    ) -> Result<Vec<Result<Answer, String>>, ConnectorError> {
        let count = requests.len();
        let mut answers: Vec<Option<Result<Answer, String>>> = (0..count).map(|_| None).collect();
        let mut queue = requests.into_iter().enumerate();
        let mut running = tokio::task::JoinSet::new();
        let mut failure: Option<ConnectorError> = None;
        loop {
            while failure.is_none() && running.len() < self.spec.in_flight.max(1) {
                let Some((index, (route, body))) = queue.next() else { break };
                let service = self.service.clone();
                running.spawn(async move { (index, service.call(route, body).await) });
            }
            let Some(joined) = running.join_next().await else { break };
            match joined {
                Ok((index, Ok(answer))) => answers[index] = Some(Ok(answer)),
                Ok((index, Err(error))) if error.class == ErrorClass::Permanent => {
                    answers[index] = Some(Err(error.message))
                }
                Ok((_, Err(error))) => {
                    failure.get_or_insert(error);
                }
                Err(join) => {
                    failure.get_or_insert(ConnectorError::transient(format!("a request task failed: {join}")));
                }
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        Ok(answers.into_iter().map(|answer| answer.expect("every request was answered")).collect())
    }

    async fn deliver_all(&self, batch: &[Event], history: bool) -> Result<Vec<ItemOutcome>, ConnectorError> {
        self.service.prepare().await?;
        let mut outcomes = vec![ItemOutcome::Delivered; batch.len()];
        let requests = self.first_requests(batch, history, &mut outcomes);
        let mut accepted: HashMap<B::Route, Vec<Answer>> = HashMap::new();
        let mut next = FollowUps::default();
        self.judge(batch, requests, &mut outcomes, &mut accepted, &mut next).await?;

        // Requests the platform asked to split: each half on its own, until
        // a single item is refused alone.
        while !next.halves.is_empty() {
            let mut halves = Vec::new();
            for (route, positions) in std::mem::take(&mut next.halves) {
                halves.extend(self.outgoing(batch, history, route, &positions, &mut outcomes));
            }
            self.judge(batch, halves, &mut outcomes, &mut accepted, &mut next).await?;
        }

        // A request refused as a whole: its items again, one per request.
        if !next.alone.is_empty() {
            let mut alone = Vec::new();
            for (route, position) in std::mem::take(&mut next.alone) {
                alone.extend(self.outgoing(batch, history, route, &[position], &mut outcomes));
            }
            let mut after = FollowUps { isolated: true, ..FollowUps::default() };
            self.judge(batch, alone, &mut outcomes, &mut accepted, &mut after).await?;
            next.conflicts.append(&mut after.conflicts);
        }

        // Items that already exist: updated instead, when the builder can.
        if !next.conflicts.is_empty() {
            let mut updates = Vec::new();
            for (route, position, detail) in next.conflicts.drain(..) {
                match self.builder.on_conflict(route, &batch[position], history, &detail) {
                    Some((update, body)) => updates.push(Outgoing { route: update, positions: vec![position], body }),
                    None => outcomes[position] = ItemOutcome::Rejected { reason: detail },
                }
            }
            let mut again = FollowUps { isolated: true, ..FollowUps::default() };
            self.judge(batch, updates, &mut outcomes, &mut accepted, &mut again).await?;
            for (_, position, detail) in again.conflicts {
                outcomes[position] =
                    ItemOutcome::Rejected { reason: format!("still conflicting after an update: {detail}") };
            }
        }

        for (route, answers) in accepted {
            self.service.settle(route, answers).await?;
        }
        Ok(outcomes)
    }

    /// Sends `requests` and applies each answer's verdict to `outcomes`;
    /// what calls for another request goes into `next`.
    async fn judge(
        &self,
        batch: &[Event],
        mut requests: Vec<Outgoing<B::Route>>,
        outcomes: &mut [ItemOutcome],
        accepted: &mut HashMap<B::Route, Vec<Answer>>,
        next: &mut FollowUps<B::Route>,
    ) -> Result<(), ConnectorError> {
        // The bodies are moved into the sends: an answer is judged by its
        // request's route and positions alone, and a copy of each body (up
        // to a platform's whole batch limit) was a copy of everything sent.
        let bodies = requests.iter_mut().map(|r| (r.route.clone(), std::mem::take(&mut r.body))).collect();
        let answers = self.send_all(bodies).await?;
        for (request, answer) in requests.into_iter().zip(answers) {
            let answer = match answer {
                Ok(answer) => answer,
                Err(reason) => {
                    for position in request.positions {
                        outcomes[position] = ItemOutcome::Rejected { reason: reason.clone() };
                    }
                    continue;
                }
            };
            let items: Vec<&Event> = request.positions.iter().map(|p| &batch[*p]).collect();
            match self.classifier.classify(request.route.clone(), &answer, &items) {
                Verdict::Accepted => accepted.entry(request.route).or_default().push(answer),
                Verdict::Items(verdicts) => {
                    if verdicts.len() != request.positions.len() {
                        return Err(ConnectorError::transient(format!(
                            "{}: an answer judged {} items of a request of {}",
                            self.spec.platform,
                            verdicts.len(),
                            request.positions.len()
                        )));
                    }
                    let mut any_accepted = false;
                    for (position, verdict) in request.positions.iter().zip(verdicts) {
                        match verdict {
                            ItemVerdict::Accepted => any_accepted = true,
                            ItemVerdict::Rejected(reason) => outcomes[*position] = ItemOutcome::Rejected { reason },
                            ItemVerdict::Conflict(detail) => {
                                next.conflicts.push((request.route.clone(), *position, detail))
                            }
                        }
                    }
                    if any_accepted {
                        accepted.entry(request.route).or_default().push(answer);
                    }
                }
                Verdict::Split(reason) if request.positions.len() > 1 => {
                    tracing::info!(
                        platform = self.spec.platform,
                        items = request.positions.len(),
                        %reason,
                        "a request was refused as a whole; sending each half on its own"
                    );
                    let (first, second) = request.positions.split_at(request.positions.len() / 2);
                    next.halves.push((request.route.clone(), first.to_vec()));
                    next.halves.push((request.route, second.to_vec()));
                }
                Verdict::Refused(reason) | Verdict::Split(reason) => {
                    let alone = self
                        .builder
                        .isolate(request.route.clone())
                        .filter(|_| request.positions.len() > 1 && !next.isolated);
                    match alone {
                        Some(single) => {
                            tracing::info!(
                                platform = self.spec.platform,
                                items = request.positions.len(),
                                %reason,
                                "a request was refused as a whole; sending its items one by one"
                            );
                            next.alone.extend(request.positions.iter().map(|p| (single.clone(), *p)));
                        }
                        None => {
                            for position in request.positions {
                                outcomes[position] = ItemOutcome::Rejected { reason: reason.clone() };
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// What answers called for beyond themselves: halves to send, items to send
/// alone, conflicts to turn into updates.
struct FollowUps<R> {
    halves: Vec<(R, Vec<usize>)>,
    alone: Vec<(R, usize)>,
    conflicts: Vec<(R, usize, String)>,
    /// These requests were already items sent alone (or updates): a whole
    /// refusal is final.
    isolated: bool,
}

impl<R> Default for FollowUps<R> {
    fn default() -> Self {
        Self { halves: Vec::new(), alone: Vec::new(), conflicts: Vec::new(), isolated: false }
    }
}

#[async_trait]
impl<B, S, C> Sink for SinkLoop<B, S, C>
where
    B: RequestBuilder,
    S: Service<B::Route>,
    C: ResponseClassifier<B::Route>,
{
    fn platform(&self) -> &'static str {
        self.spec.platform
    }

    fn max_batch(&self, history: bool) -> usize {
        if history { self.spec.batches.history } else { self.spec.batches.live }
    }

    fn identifies(&self, person: &Person) -> bool {
        self.spec.identifies(person)
    }

    fn unidentified_reason(&self) -> &'static str {
        self.spec.unidentified_reason()
    }

    fn accepts(&self, kind: EventKind) -> bool {
        self.spec.accepts(kind) && self.builder.accepts(kind)
    }

    fn wants_person_totals(&self) -> bool {
        self.spec.person_totals
    }

    fn preview(&self, batch: &[Event], history: bool) -> Option<Preview> {
        let mut outcomes = vec![ItemOutcome::Delivered; batch.len()];
        let requests = self
            .first_requests(batch, history, &mut outcomes)
            .into_iter()
            .map(|request| PreviewRequest {
                route: format!("{:?}", request.route),
                items: request.positions.len(),
                body: request.body,
            })
            .collect();
        Some(Preview { outcomes, requests })
    }

    fn fingerprint(&self, event: &Event) -> Option<String> {
        self.builder.fingerprint(event)
    }

    async fn deliver(&mut self, batch: &[Event], history: bool) -> Result<Vec<ItemOutcome>, ConnectorError> {
        self.deliver_all(batch, history).await
    }
}

#[async_trait]
impl<B, S, C> SinkAccount for SinkLoop<B, S, C>
where
    B: RequestBuilder,
    S: Service<B::Route>,
    C: ResponseClassifier<B::Route>,
{
    fn platform(&self) -> &'static str {
        self.spec.platform
    }

    fn writer(&self) -> Box<dyn Sink> {
        Box::new(self.clone())
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        self.service.check().await
    }

    async fn forget(&self, email: &str) -> Result<ForgetReport, ConnectorError> {
        self.service.forget(email).await
    }
}
