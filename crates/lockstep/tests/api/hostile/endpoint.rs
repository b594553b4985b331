//! Endpoints on loopback that misbehave on purpose, over plain TCP or TLS.
//!
//! Each reads the request like a real server, notes when it arrived, then answers in one
//! of the ways [`Misbehaviour`] names. It also counts the bytes it managed to write, so a
//! test can tell whether the sender stopped reading.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// How an endpoint answers.
#[derive(Debug, Clone)]
pub enum Misbehaviour {
    /// 200 with an empty body: a well-behaved endpoint.
    Fine,
    /// Headers promising 1000 bytes, then one byte every interval.
    Trickle(Duration),
    /// Headers promising 1000 bytes, then nothing, with the connection held open.
    Silence,
    /// 200 with a body of this many bytes, written for as long as the reader takes them.
    Huge(usize),
    /// 200 with a chunked body that never ends.
    EndlessChunks,
    /// Headers promising `promised` bytes, then only `sent` of them, then a clean close.
    ShortBody { promised: usize, sent: usize },
    /// Headers and part of the body, then a TCP reset.
    ResetMidBody,
    /// Header lines that never end.
    EndlessHeaders,
    /// HTTP/2 frames, a stream reset among them, in answer to an HTTP/1.1 request.
    Http2Frames,
    /// A redirect to `location`.
    Redirect(u16, String),
    /// A status with these extra header lines, such as `Retry-After: 3`.
    Status(u16, String),
    /// 200 on a connection kept alive, then a hang-up on the next request it carries, as a
    /// server whose keep-alive ran out does.
    OneAnswerPerConnection,
}

/// A running misbehaving endpoint.
#[derive(Clone)]
pub struct Endpoint {
    pub base: String,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    written: Arc<AtomicU64>,
    finished: Arc<AtomicU64>,
    refused_on_reuse: Arc<AtomicU64>,
}

impl Endpoint {
    /// An endpoint over plain TCP.
    pub async fn start(behaviour: Misbehaviour) -> Endpoint {
        Endpoint::listen("http", behaviour, None).await
    }

    /// An endpoint over TLS that presents what `tls` holds.
    pub async fn start_tls(behaviour: Misbehaviour, tls: TlsAcceptor) -> Endpoint {
        Endpoint::listen("https", behaviour, Some(tls)).await
    }

    async fn listen(scheme: &str, behaviour: Misbehaviour, tls: Option<TlsAcceptor>) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let endpoint = Endpoint {
            base: format!("{scheme}://127.0.0.1:{port}"),
            arrivals: Arc::default(),
            written: Arc::default(),
            finished: Arc::default(),
            refused_on_reuse: Arc::default(),
        };
        let accepting = endpoint.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let serving = accepting.clone();
                let behaviour = behaviour.clone();
                let tls = tls.clone();
                tokio::spawn(async move { serving.serve(stream, behaviour, tls).await });
            }
        });
        endpoint
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// When each request arrived, in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }

    /// Bytes written to all connections so far, headers included.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// How many answers have ended, by finishing or because the sender hung up.
    pub fn finished(&self) -> u64 {
        self.finished.load(Ordering::SeqCst)
    }

    async fn serve(self, stream: TcpStream, behaviour: Misbehaviour, tls: Option<TlsAcceptor>) {
        let _ = stream.set_nodelay(true);
        if matches!(behaviour, Misbehaviour::ResetMidBody) {
            return self.serve_then_reset(stream).await;
        }
        match tls {
            Some(tls) => {
                // A handshake the sender refuses ends here; that is the point of such tests.
                if let Ok(stream) = tls.accept(stream).await {
                    self.exchange(stream, behaviour).await;
                }
            }
            None => self.exchange(stream, behaviour).await,
        }
    }

    async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(&self, mut stream: S, how: Misbehaviour) {
        if !read_request(&mut stream).await {
            return;
        }
        self.arrivals.lock().unwrap().push(Instant::now());
        if matches!(how, Misbehaviour::OneAnswerPerConnection) {
            return self.answer_once_then_hang_up(stream).await;
        }

        let mut out = Counted {
            stream: &mut stream,
            written: &self.written,
        };
        let _ = answer(&mut out, how).await;
        self.finished.fetch_add(1, Ordering::SeqCst);
    }

    async fn answer_once_then_hang_up<S: AsyncRead + AsyncWrite + Unpin>(&self, mut stream: S) {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.flush().await;
        self.finished.fetch_add(1, Ordering::SeqCst);

        if read_request(&mut stream).await {
            self.refused_on_reuse.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Requests that came on a connection already used, and were hung up on.
    pub fn refused_on_reuse(&self) -> u64 {
        self.refused_on_reuse.load(Ordering::SeqCst)
    }

    async fn serve_then_reset(self, mut stream: TcpStream) {
        if !read_request(&mut stream).await {
            return;
        }
        self.arrivals.lock().unwrap().push(Instant::now());
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n";
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(&[b'x'; 100]).await;
        let _ = stream.flush().await;
        tokio::time::sleep(Duration::from_millis(100)).await;

        // Dropping a socket with a zero linger sends RST instead of FIN.
        let _ = stream.set_zero_linger();
        drop(stream);
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
}

/// A stream that counts what is written to it.
struct Counted<'a, S> {
    stream: &'a mut S,
    written: &'a AtomicU64,
}

impl<S: AsyncWrite + Unpin> Counted<'_, S> {
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.written.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        Ok(())
    }

    async fn close(&mut self) -> std::io::Result<()> {
        self.stream.flush().await?;
        self.stream.shutdown().await
    }
}

async fn answer<S: AsyncWrite + Unpin>(
    out: &mut Counted<'_, S>,
    how: Misbehaviour,
) -> std::io::Result<()> {
    let promise = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    match how {
        Misbehaviour::Fine => simple(out, 200, "").await,
        Misbehaviour::Trickle(every) => {
            out.send(promise.as_bytes()).await?;
            for _ in 0..1000 {
                tokio::time::sleep(every).await;
                out.send(b"x").await?;
            }
            out.close().await
        }
        Misbehaviour::Silence => {
            out.send(promise.as_bytes()).await?;
            tokio::time::sleep(Duration::from_secs(120)).await;
            Ok(())
        }
        Misbehaviour::Huge(size) => huge(out, size).await,
        Misbehaviour::EndlessChunks => endless_chunks(out).await,
        Misbehaviour::ShortBody { promised, sent } => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {promised}\r\n\r\n");
            out.send(head.as_bytes()).await?;
            out.send(&vec![b'x'; sent]).await?;
            out.close().await
        }
        Misbehaviour::EndlessHeaders => endless_headers(out).await,
        Misbehaviour::Http2Frames => http2_frames(out).await,
        Misbehaviour::Redirect(code, to) => simple(out, code, &format!("Location: {to}\r\n")).await,
        Misbehaviour::Status(code, extra) => simple(out, code, &extra).await,
        Misbehaviour::ResetMidBody | Misbehaviour::OneAnswerPerConnection => {
            unreachable!("answered by the connection's own handler")
        }
    }
}

async fn simple<S: AsyncWrite + Unpin>(
    out: &mut Counted<'_, S>,
    code: u16,
    extra: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code} Answer\r\nContent-Length: 2\r\nConnection: close\r\n{extra}\r\nok"
    );
    out.send(head.as_bytes()).await?;
    out.close().await
}

async fn huge<S: AsyncWrite + Unpin>(out: &mut Counted<'_, S>, size: usize) -> std::io::Result<()> {
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
    out.send(head.as_bytes()).await?;
    let block = vec![b'x'; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len());
        out.send(&block[..n]).await?;
        left -= n;
    }
    out.close().await
}

async fn endless_chunks<S: AsyncWrite + Unpin>(out: &mut Counted<'_, S>) -> std::io::Result<()> {
    let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    out.send(head.as_bytes()).await?;
    let chunk = format!("1000\r\n{}\r\n", "x".repeat(0x1000));
    // Bounded so a sender that never hangs up cannot keep this test alive for ever.
    for _ in 0..1_000_000 {
        out.send(chunk.as_bytes()).await?;
    }
    Ok(())
}

async fn endless_headers<S: AsyncWrite + Unpin>(out: &mut Counted<'_, S>) -> std::io::Result<()> {
    out.send(b"HTTP/1.1 200 OK\r\n").await?;
    for i in 0..1_000_000u32 {
        out.send(format!("X-Filler-{i}: {}\r\n", "y".repeat(100)).as_bytes())
            .await?;
    }
    Ok(())
}

/// A server preface (SETTINGS), an RST_STREAM for stream 1 and a GOAWAY, as an HTTP/2-only
/// server might send them.
async fn http2_frames<S: AsyncWrite + Unpin>(out: &mut Counted<'_, S>) -> std::io::Result<()> {
    let settings = [0, 0, 0, 0x4, 0, 0, 0, 0, 0];
    let reset = [0, 0, 4, 0x3, 0, 0, 0, 0, 1, 0, 0, 0, 0x2];
    let goaway = [0, 0, 8, 0x7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x1];
    out.send(&settings).await?;
    out.send(&reset).await?;
    out.send(&goaway).await?;
    tokio::time::sleep(Duration::from_secs(30)).await;
    Ok(())
}

/// Reads one request's head and body; false if the connection ended first.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut data = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = data.len() - head_end;
    while body < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => body += n,
        }
    }
    true
}
