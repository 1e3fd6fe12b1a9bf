//! Who is on the other end of a connection, proven by TLS with the peer's
//! ed25519 key.
//!
//! There is no certificate authority. Every participant presents its ed25519
//! public key as a raw public key (RFC 7250) and proves possession of the
//! secret key in the TLS 1.3 handshake; the other side accepts the key only if
//! the cluster config lists it. An unknown key cannot connect, and because a
//! replica's outgoing connection pins the key of the replica it dials, one
//! replica cannot pose as another.

use pbft_core::{ClientId, PublicKey, ReplicaId, SecretKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature_with_raw_key, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer, UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The ALPN protocol name both sides must speak.
pub const ALPN: &[u8] = b"pbft/1";

/// DER prefix of an ed25519 SubjectPublicKeyInfo (RFC 8410); the 32 key bytes follow.
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
/// DER prefix of an ed25519 PKCS#8 v1 private key (RFC 8410); the 32 seed bytes follow.
const PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// A participant of a cluster as the transport knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    /// A replica.
    Replica(ReplicaId),
    /// A client.
    Client(ClientId),
}

impl Peer {
    /// The author this peer's authenticated channel speaks for.
    pub fn author(self) -> pbft_core::Author {
        match self {
            Peer::Replica(id) => pbft_core::Author::Replica(id),
            Peer::Client(id) => pbft_core::Author::Client(id),
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Replica(id) => write!(f, "{id}"),
            Peer::Client(id) => write!(f, "{id}"),
        }
    }
}

/// Why TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// rustls refused the settings (it names what).
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    /// quinn refused the rustls settings.
    #[error("QUIC crypto setup failed: {0}")]
    Quic(String),
}

/// The ed25519 SubjectPublicKeyInfo of `key`, the "certificate" a peer presents.
pub fn public_key_spki(key: &PublicKey) -> Vec<u8> {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(&key.0);
    der
}

/// The public key inside an ed25519 SubjectPublicKeyInfo, if it is one.
pub fn spki_public_key(der: &[u8]) -> Option<PublicKey> {
    let key = der.strip_prefix(&SPKI_PREFIX[..])?;
    Some(PublicKey(<[u8; 32]>::try_from(key).ok()?))
}

/// The public keys a participant accepts, and who each one belongs to.
#[derive(Clone, Debug, Default)]
pub struct PinnedKeys {
    owners: BTreeMap<PublicKey, Peer>,
}

impl PinnedKeys {
    /// Pins every replica key (indexed by replica id) and the given client keys.
    pub fn new(
        replicas: &[PublicKey],
        clients: impl IntoIterator<Item = (ClientId, PublicKey)>,
    ) -> PinnedKeys {
        let mut owners = BTreeMap::new();
        for (index, key) in replicas.iter().enumerate() {
            owners.insert(*key, Peer::Replica(ReplicaId(index as u32)));
        }
        for (id, key) in clients {
            owners.entry(key).or_insert(Peer::Client(id));
        }
        PinnedKeys { owners }
    }

    /// Who owns `key`, if anyone in the config does.
    pub fn owner(&self, key: &PublicKey) -> Option<Peer> {
        self.owners.get(key).copied()
    }

    /// Who presented the SubjectPublicKeyInfo `der`.
    pub fn owner_of_spki(&self, der: &[u8]) -> Option<Peer> {
        spki_public_key(der).and_then(|key| self.owner(&key))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certified_key(secret: &SecretKey, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, IdentityError> {
    let mut pkcs8 = PKCS8_PREFIX.to_vec();
    pkcs8.extend_from_slice(&secret.to_seed());
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8));
    let signing_key = provider.key_provider.load_private_key(der)?;
    let spki = CertificateDer::from(public_key_spki(&secret.public()));
    Ok(Arc::new(CertifiedKey::new(vec![spki], signing_key)))
}

/// Accepts a peer whose raw public key is one of a fixed set.
#[derive(Debug)]
struct PinnedVerifier {
    accepted: Vec<Vec<u8>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedVerifier {
    fn new(keys: impl IntoIterator<Item = PublicKey>, provider: &CryptoProvider) -> PinnedVerifier {
        PinnedVerifier {
            accepted: keys.into_iter().map(|key| public_key_spki(&key)).collect(),
            algorithms: provider.signature_verification_algorithms,
        }
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        let known = self.accepted.iter().any(|spki| spki.as_slice() == end_entity.as_ref());
        if !known || !intermediates.is_empty() {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(())
    }

    fn verify_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = SubjectPublicKeyInfoDer::from(cert.as_ref());
        verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algorithms)
    }
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls13RequiredForQuic)
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates).map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

impl ClientCertVerifier for PinnedVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, intermediates).map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

/// Streams a peer may have open on one connection. Ours open one; the limit
/// caps what a hostile peer can make us buffer (one partial frame per stream).
const MAX_STREAMS_PER_CONNECTION: u32 = 2;

fn transport_config() -> Arc<quinn::TransportConfig> {
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(MAX_STREAMS_PER_CONNECTION.into());
    transport.max_concurrent_uni_streams(MAX_STREAMS_PER_CONNECTION.into());
    transport.keep_alive_interval(Some(std::time::Duration::from_secs(1)));
    if let Ok(idle) = quinn::IdleTimeout::try_from(std::time::Duration::from_secs(10)) {
        transport.max_idle_timeout(Some(idle));
    }
    Arc::new(transport)
}

/// The endpoint settings of a replica: its stateless-reset key is derived
/// from its secret key, so it is the same after a restart.
///
/// A QUIC peer that still holds a connection to a replica's previous
/// process keeps sending on it until the idle timeout (10 s) unless the new
/// process answers with a stateless reset the peer can authenticate (RFC
/// 9000 §10.3): the token is an HMAC of the connection id under this key,
/// and a key drawn at random per process (quinn's default) makes every
/// reset after a restart unverifiable. Measured on the test network: with
/// random keys a restarted cluster answered its clients only after about
/// 10 s (see testnet/tests/scenarios.rs and the commit that added this).
pub fn endpoint_config(secret: &SecretKey) -> quinn::EndpointConfig {
    let derive = |purpose: &[u8]| -> [u8; 32] {
        use sha2::{Digest, Sha256};
        Sha256::new().chain_update(purpose).chain_update(secret.to_seed()).finalize().into()
    };
    let reset_key = derive(b"pbft quic stateless reset key v1");
    let mut config =
        quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &reset_key)));
    // The endpoint answers a packet for a connection it does not know with
    // a reset only if the connection id passes its generator's keyed check,
    // so that key must survive the restart too.
    let [a, b, c, d, e, f, g, h, ..] = derive(b"pbft quic connection id key v1");
    let cid_key = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
    config.cid_generator(move || Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key)));
    config
}

/// QUIC settings for accepting connections: we present `secret`'s key and
/// accept only peers whose key is in `accepted`.
pub fn server_config(
    secret: &SecretKey,
    accepted: &PinnedKeys,
) -> Result<quinn::ServerConfig, IdentityError> {
    let provider = provider();
    let verifier = PinnedVerifier::new(accepted.owners.keys().copied(), &provider);
    let key = certified_key(secret, &provider)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(rustls::server::AlwaysResolvesServerRawPublicKeys::new(key)));
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|error| IdentityError::Quic(error.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport_config());
    Ok(config)
}

/// QUIC settings for dialling the replica whose key is `server`: we present
/// `secret`'s key and accept nothing but `server`'s.
pub fn client_config(secret: &SecretKey, server: PublicKey) -> Result<quinn::ClientConfig, IdentityError> {
    let provider = provider();
    let verifier = PinnedVerifier::new([server], &provider);
    let key = certified_key(secret, &provider)?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(rustls::client::AlwaysResolvesClientRawPublicKeys::new(key)));
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|error| IdentityError::Quic(error.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport_config());
    Ok(config)
}

/// The public key the peer of an established connection proved it holds.
pub fn peer_public_key(connection: &quinn::Connection) -> Option<PublicKey> {
    let identity = connection.peer_identity()?;
    let certificates = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    spki_public_key(certificates.first()?.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_round_trips_and_rejects_other_shapes() {
        let key = SecretKey::from_seed([5; 32]).public();
        assert_eq!(spki_public_key(&public_key_spki(&key)), Some(key));
        let mut wrong = public_key_spki(&key);
        wrong[8] = 0x71;
        assert_eq!(spki_public_key(&wrong), None);
        assert_eq!(spki_public_key(&public_key_spki(&key)[..40]), None);
    }

    #[test]
    fn replica_keys_win_over_a_client_reusing_one() {
        let replica = SecretKey::from_seed([1; 32]).public();
        let pinned = PinnedKeys::new(&[replica], [(ClientId(0), replica)]);
        assert_eq!(pinned.owner(&replica), Some(Peer::Replica(ReplicaId(0))));
    }

    #[test]
    fn tls_settings_build_from_an_ed25519_key() {
        let secret = SecretKey::from_seed([2; 32]);
        let pinned = PinnedKeys::new(&[secret.public()], []);
        assert!(server_config(&secret, &pinned).is_ok());
        assert!(client_config(&secret, secret.public()).is_ok());
    }
}
