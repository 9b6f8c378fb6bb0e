//! A minimal NetworkBehaviour that accepts every inbound stream on a fixed set of protocols and hands it to
//! the application over an unbounded channel.
//!
//! Why not libp2p-stream's `Control::accept`: its per-protocol channel has no buffer (futures mpsc
//! `channel(0)`), and an inbound stream that arrives while the previous one has not been taken off the channel
//! yet is dropped ("Channel is full, dropping inbound stream"), which the dialer sees as a reset stream
//! ("connection is closed"). Fine for a test that opens a few streams, not for 1,000 streams back to back.
//! Here nothing is ever dropped: every negotiated stream is queued.

use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::{DeniedUpgrade, InboundUpgrade, UpgradeInfo};
use libp2p::core::Endpoint;
use libp2p::swarm::handler::{ConnectionEvent, FullyNegotiatedInbound};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm, NetworkBehaviour,
    SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

pub type Incoming = UnboundedReceiver<(PeerId, StreamProtocol, Stream)>;

pub struct Behaviour {
    protocols: Vec<StreamProtocol>,
    tx: UnboundedSender<(PeerId, StreamProtocol, Stream)>,
}

impl Behaviour {
    /// The behaviour, and the receiving end of every inbound stream on `protocols`.
    pub fn new(protocols: Vec<StreamProtocol>) -> (Self, Incoming) {
        let (tx, rx) = unbounded_channel();
        (Behaviour { protocols, tx }, rx)
    }
    fn handler(&self, peer: PeerId) -> Handler {
        Handler { peer, protocols: self.protocols.clone(), tx: self.tx.clone() }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }
    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }
    fn on_swarm_event(&mut self, _: FromSwarm) {}
    fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, ev: THandlerOutEvent<Self>) {
        match ev {}
    }
    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

pub struct Handler {
    peer: PeerId,
    protocols: Vec<StreamProtocol>,
    tx: UnboundedSender<(PeerId, StreamProtocol, Stream)>,
}

pub struct Upgrade(Vec<StreamProtocol>);

impl UpgradeInfo for Upgrade {
    type Info = StreamProtocol;
    type InfoIter = std::vec::IntoIter<StreamProtocol>;
    fn protocol_info(&self) -> Self::InfoIter {
        self.0.clone().into_iter()
    }
}

impl InboundUpgrade<Stream> for Upgrade {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Output, Infallible>>;
    fn upgrade_inbound(self, s: Stream, p: StreamProtocol) -> Self::Future {
        std::future::ready(Ok((s, p)))
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = Upgrade;
    type OutboundProtocol = DeniedUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = Infallible;

    fn listen_protocol(&self) -> SubstreamProtocol<Upgrade, ()> {
        SubstreamProtocol::new(Upgrade(self.protocols.clone()), ())
    }
    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, Infallible, Infallible>> {
        Poll::Pending
    }
    fn on_behaviour_event(&mut self, ev: Infallible) {
        match ev {}
    }
    fn on_connection_event(&mut self, ev: ConnectionEvent<Upgrade, DeniedUpgrade, (), Infallible>) {
        if let ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound { protocol: (s, p), .. }) = ev {
            let _ = self.tx.send((self.peer, p, s));
        }
    }
}
