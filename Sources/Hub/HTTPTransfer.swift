import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP request run to completion on its own `URLSession`, synchronously: the response, and the body either
/// collected or handed chunk by chunk to a sink (a download). A redirect to another host drops the
/// `Authorization` header, as huggingface_hub does for the Hub's CDN.
final class HTTPTransfer: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    /// What a finished request gave.
    struct Result {
        /// The HTTP status, with header names lowercased.
        var status: Int
        var headers: [String: String]
        /// The body, unless a sink took it (then what it refused: the body of an error status).
        var body: Data
    }

    private let sink: ((Int, Data) throws -> Void)?
    private let lock = NSLock()
    private var response: HTTPURLResponse?
    private var body = Data()
    private var failure: Error?
    private let done = DispatchSemaphore(value: 0)

    private init(sink: ((Int, Data) throws -> Void)?) {
        self.sink = sink
    }

    /// Runs `request`, giving a 2xx response's body to `sink(status, chunk)` as it arrives (or collecting it when
    /// there is none).
    /// `timeout`: seconds without progress before giving up.
    /// - Throws: the transport's error (no connection, a timeout, a reset), or what `sink` threw.
    static func run(_ request: URLRequest, timeout: TimeInterval, sink: ((Int, Data) throws -> Void)? = nil) throws -> Result {
        let transfer = HTTPTransfer(sink: sink)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = 7 * 24 * 3600
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        let session = URLSession(configuration: configuration, delegate: transfer, delegateQueue: nil)
        session.dataTask(with: request).resume()
        transfer.done.wait()
        session.finishTasksAndInvalidate()
        return try transfer.lock.withLock {
            if let failure = transfer.failure { throw failure }
            guard let response = transfer.response else { throw URLError(.badServerResponse) }
            var headers: [String: String] = [:]
            for (key, value) in response.allHeaderFields {
                if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
            }
            return Result(status: response.statusCode, headers: headers, body: transfer.body)
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        lock.withLock { self.response = response as? HTTPURLResponse }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        lock.lock()
        if response == nil { response = dataTask.response as? HTTPURLResponse }
        let status = response?.statusCode ?? 0
        guard let sink, (200..<300).contains(status), failure == nil else {
            body.append(data)
            lock.unlock()
            return
        }
        lock.unlock()
        do {
            try sink(status, data)
        } catch {
            lock.withLock { if failure == nil { failure = error } }
            dataTask.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        lock.withLock {
            if response == nil { response = task.response as? HTTPURLResponse }
            if let error, failure == nil { failure = error }
        }
        done.signal()
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        var next = request
        if request.url?.host != task.originalRequest?.url?.host {
            next.setValue(nil, forHTTPHeaderField: "Authorization")
        }
        if let range = task.originalRequest?.value(forHTTPHeaderField: "Range") {
            next.setValue(range, forHTTPHeaderField: "Range")
        }
        completionHandler(next)
    }
}
