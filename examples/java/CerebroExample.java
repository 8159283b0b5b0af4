/*
 * Author:  Cerebro team
 * Date:    2026-11-24
 * Subject: The main app's side of Cerebro in plain Java 17: sync call, async call, signed callback receiver.
 * Tagline: No thread waits; the answer knocks when it is ready.
 *
 * Only java.net.http (client), com.sun.net.httpserver (receiver) and javax.crypto.Mac (HMAC).
 *
 *   javac -d out CerebroExample.java
 *   java -cp out CerebroExample <cerebro-url> <secret> <receiver-port>
 *        [sync-path sync-json async-path async-json]
 */

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public final class CerebroExample {

    static final long TOLERANCE_SECONDS = 300;

    /** HMAC-SHA256 over "<timestamp>." + body, as lowercase hex. */
    static String sign(String secret, String timestamp, byte[] body) throws Exception {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        mac.update((timestamp + ".").getBytes(StandardCharsets.UTF_8));
        byte[] digest = mac.doFinal(body);
        StringBuilder hex = new StringBuilder();
        for (byte b : digest) {
            hex.append(String.format("%02x", b));
        }
        return hex.toString();
    }

    /** Verifies a callback; returns null when valid, else the reason to reject it. */
    static String verify(String secret, String timestamp, String signature, byte[] body) throws Exception {
        if (timestamp == null || signature == null || !signature.startsWith("sha256=")) {
            return "missing or malformed signature headers";
        }
        long ts;
        try {
            ts = Long.parseLong(timestamp.trim());
        } catch (NumberFormatException e) {
            return "bad timestamp";
        }
        if (Math.abs(System.currentTimeMillis() / 1000 - ts) > TOLERANCE_SECONDS) {
            return "timestamp outside tolerance (replay?)";
        }
        byte[] expected = sign(secret, timestamp.trim(), body).getBytes(StandardCharsets.US_ASCII);
        byte[] given = signature.substring(7).trim().getBytes(StandardCharsets.US_ASCII);
        return MessageDigest.isEqual(expected, given) ? null : "signature mismatch";
    }

    /** The callback receiver: verifies, drops duplicates by Idempotency-Key, hands bodies over. */
    static final class Receiver {
        final String secret;
        final BlockingQueue<String[]> accepted = new LinkedBlockingQueue<>();
        final Map<String, Boolean> seen = new ConcurrentHashMap<>();
        final HttpServer server;

        Receiver(String secret, int port) throws IOException {
            this.secret = secret;
            server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
            server.createContext("/", this::handle);
            server.start();
        }

        void handle(HttpExchange exchange) throws IOException {
            byte[] body = exchange.getRequestBody().readAllBytes();
            int status;
            try {
                String reason = verify(secret, exchange.getRequestHeaders().getFirst("X-Cerebro-Timestamp"),
                        exchange.getRequestHeaders().getFirst("X-Cerebro-Signature"), body);
                String key = exchange.getRequestHeaders().getFirst("Idempotency-Key");
                if (reason != null) {
                    System.out.println("REJECTED " + reason);
                    status = 401;
                } else if (key == null || seen.putIfAbsent(key, Boolean.TRUE) != null) {
                    System.out.println("DUPLICATE " + key);
                    status = 200;  // already processed: acknowledge so Cerebro stops retrying
                } else {
                    accepted.add(new String[] {key, new String(body, StandardCharsets.UTF_8)});
                    status = 200;
                }
            } catch (Exception e) {
                status = 500;
            }
            exchange.sendResponseHeaders(status, -1);
            exchange.close();
        }
    }

    static HttpResponse<String> post(HttpClient client, String url, String json, Map<String, String> headers)
            throws Exception {
        HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofSeconds(10))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json));
        headers.forEach(builder::header);
        return client.send(builder.build(), HttpResponse.BodyHandlers.ofString());
    }

    static void check(boolean ok, String message) {
        if (!ok) {
            System.out.println("FAIL " + message);
            System.exit(1);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: CerebroExample <cerebro-url> <secret> <receiver-port> "
                    + "[sync-path sync-json async-path async-json]");
            System.exit(2);
        }
        String base = args[0].replaceAll("/+$", "");
        String secret = args[1];
        int port = Integer.parseInt(args[2]);
        String syncPath = args.length > 3 ? args[3] : "/v1/jobs/sync_add";
        String syncJson = args.length > 4 ? args[4] : "{\"a\": 1, \"b\": 2}";
        String asyncPath = args.length > 5 ? args[5] : "/v1/jobs/square";
        String asyncJson = args.length > 6 ? args[6] : "{\"x\": 12}";

        // The signature scheme, checked against the vector Python's tests use.
        check(sign("secret", "1700000000", "{}".getBytes(StandardCharsets.UTF_8))
                .equals("b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"), "known HMAC vector");

        Receiver receiver = new Receiver(secret, port);
        HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        try {
            // 1. A tampered callback is rejected: a valid signature of another body.
            String ts = Long.toString(System.currentTimeMillis() / 1000);
            String signed = "{\"task_id\":\"forged\",\"status\":\"succeeded\"}";
            String tampered = "{\"task_id\":\"forged\",\"status\":\"failed\"}";
            HttpResponse<String> forged = post(client, "http://127.0.0.1:" + port + "/cb", tampered, Map.of(
                    "X-Cerebro-Timestamp", ts,
                    "X-Cerebro-Signature", "sha256=" + sign(secret, ts, signed.getBytes(StandardCharsets.UTF_8)),
                    "Idempotency-Key", "forged"));
            check(forged.statusCode() == 401, "tampered callback must be rejected, got " + forged.statusCode());
            System.out.println("TAMPERED REJECTED 401");

            // 2. A synchronous endpoint answers at once.
            HttpResponse<String> sync = post(client, base + syncPath, syncJson, Map.of());
            check(sync.statusCode() == 200, "sync call: " + sync.statusCode() + " " + sync.body());
            System.out.println("SYNC 200 " + sync.body());

            // 3. An async endpoint acknowledges with 202 and a task id; the result comes as a callback.
            long started = System.nanoTime();
            HttpResponse<String> ack = post(client, base + asyncPath, asyncJson, Map.of());
            double ackMs = (System.nanoTime() - started) / 1e6;
            check(ack.statusCode() == 202, "async call: " + ack.statusCode() + " " + ack.body());
            Matcher m = Pattern.compile("\"task_id\"\\s*:\\s*\"([^\"]+)\"").matcher(ack.body());
            check(m.find(), "no task_id in " + ack.body());
            String taskId = m.group(1);
            System.out.printf("ASYNC 202 task %s in %.1f ms%n", taskId, ackMs);

            String[] callback = receiver.accepted.poll(60, TimeUnit.SECONDS);
            check(callback != null, "no verified callback within 60 s");
            check(callback[0].equals(taskId), "callback for another task: " + callback[0]);
            System.out.println("CALLBACK VERIFIED " + callback[0] + " " + callback[1]);
        } finally {
            receiver.server.stop(0);
        }
        System.out.println("OK");
    }
}
